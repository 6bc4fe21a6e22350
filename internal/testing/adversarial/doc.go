// Package adversarial holds the service's adversarial test suite (issue 7): hostile
// inputs at every entry point, the generated authorization matrix, faults injected
// between the functions and the emulators, and a leak check over everything the run
// logged, answered and mailed. The tests drive the real handlers, wired to the real
// emulators (internal/testing/testenv) exactly as functions/*/main.go wires them, each on a
// table of its own so that "nothing changed" can be checked on the whole table.
//
// The tests count what they tried and what held; when ORGKEY_ADVERSARIAL_REPORT names a
// file, TestMain writes those figures there as a markdown table (make adversarial
// prints it). This file exists for the package comment: the suite is all tests.
package adversarial
