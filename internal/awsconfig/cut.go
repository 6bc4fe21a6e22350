//go:build !orgkey_nocut

package awsconfig

// skipSharedFiles is the init cut Load makes in Lambda. The benchmark builds the
// functions once more with -tags orgkey_nocut to measure it against the plain
// config.LoadDefaultConfig.
const skipSharedFiles = true
