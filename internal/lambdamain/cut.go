//go:build !orgkey_nocut

package lambdamain

// skipSharedFiles is the init cut LoadAWSConfig makes in Lambda. The benchmark builds the
// functions once more with -tags orgkey_nocut to measure it against the plain
// config.LoadDefaultConfig.
const skipSharedFiles = true
