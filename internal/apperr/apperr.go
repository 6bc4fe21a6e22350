// Package apperr is the service's error vocabulary: a small set of codes that every
// package uses, and that only the edges (HTTP handlers, Lambda handlers) turn into
// status codes and messages. Internal detail never crosses an edge.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error for the caller.
type Code string

const (
	Invalid      Code = "invalid"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	NotFound     Code = "not_found"
	Conflict     Code = "conflict"
	RateLimited  Code = "rate_limited"
	Unavailable  Code = "unavailable"
	Internal     Code = "internal"
)

// Error is an error with a code, a machine-readable reason and a message that is safe
// to show to the caller. Err holds the cause, for logs only.
type Error struct {
	Code    Code
	Reason  string // machine-readable, e.g. "target_not_pro_user"; may be empty
	Message string // safe for the caller: never a secret, never internal detail
	Err     error
}

func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a code, a reason and a caller-safe message.
func New(code Code, reason, message string) *Error {
	return &Error{Code: code, Reason: reason, Message: message}
}

// Wrapf returns an error with a code around a cause; the message is caller-safe.
func Wrapf(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of the first *Error in err's chain; Internal when there is none.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// ReasonOf returns the reason of the first *Error in err's chain, or "".
func ReasonOf(err error) string {
	if e := As(err); e != nil {
		return e.Reason
	}
	return ""
}

// Wrap adds the operation to a non-nil *errp, keeping the chain (in the manner of
// pkgsite's derrors.Wrap). Use it with defer: defer apperr.Wrap(&err, "store.GetOrg(%q)", id).
// Arguments must never be secrets.
func Wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}
