// Package eventfuzz holds the fuzz targets for each function's event decoding: the
// activation trigger's input, the support-reset console event and the claim link's
// query. They drive the real handlers with hand-written in-memory fakes, so that `go
// test -fuzz` runs them without the emulators (the flows' own packages start those in
// TestMain). Seeds are committed under testdata/fuzz.
package eventfuzz
