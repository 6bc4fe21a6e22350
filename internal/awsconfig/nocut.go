//go:build orgkey_nocut

package awsconfig

const skipSharedFiles = false
