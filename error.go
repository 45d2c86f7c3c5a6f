// Package mloop holds what every part of mloop shares: the one error type with
// its closed set of kinds. Domain packages return *Error values (or wrap them
// with %w); the HTTP layer maps each kind once to an HTTP status and an MLflow
// error_code, and shows clients only the safe message of internal errors.
package mloop

import (
	"errors"
	"fmt"
)

// Error kinds. The set is closed: every error that reaches a client is one of
// these. Each maps to an MLflow error_code and an HTTP status in httpapi.
const (
	ENOTFOUND        = "not_found"       // RESOURCE_DOES_NOT_EXIST, 404
	EEXISTS          = "already_exists"  // RESOURCE_ALREADY_EXISTS, 400
	EINVALID         = "invalid"         // INVALID_PARAMETER_VALUE, 400
	ECONFLICT        = "conflict"        // INVALID_STATE, 400
	EBADREQUEST      = "bad_request"     // BAD_REQUEST, 400
	ETOOLARGE        = "too_large"       // RESOURCE_LIMIT_EXCEEDED, 400 (MLflow) / 413 for bodies
	EUNAUTHENTICATED = "unauthenticated" // UNAUTHENTICATED, 401
	EFORBIDDEN       = "forbidden"       // PERMISSION_DENIED, 403
	EUNAVAILABLE     = "unavailable"     // TEMPORARILY_UNAVAILABLE, 503
	EINTERNAL        = "internal"        // INTERNAL_ERROR, 500
	ENOTIMPLEMENTED  = "not_implemented" // NOT_IMPLEMENTED, 501
)

// Error is mloop's error type. Code is one of the E* kinds; Message is safe to
// show to a client (it names the offending field or resource).
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("mloop error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given kind and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the kind of err: the Code of the first *Error in its chain,
// EINTERNAL for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the Message of the
// first *Error in its chain, or "Internal error." for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// IsNotFound reports whether err is of kind ENOTFOUND.
func IsNotFound(err error) bool { return ErrorCode(err) == ENOTFOUND }
