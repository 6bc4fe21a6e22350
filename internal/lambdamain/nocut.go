//go:build orgkey_nocut

package lambdamain

const skipSharedFiles = false
