package lambdarun

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Runtime API headers, as aws-lambda-go's runtime client reads and writes them.
const (
	hdrRequestID   = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadlineMS  = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID     = "Lambda-Runtime-Trace-Id"
	hdrErrorType   = "Lambda-Runtime-Function-Error-Type"
	// Trailers a streaming response uses to report a failure mid-body.
	trlErrorType = "Lambda-Runtime-Function-Error-Type"
	trlErrorBody = "Lambda-Runtime-Function-Error-Body"
)

func (p *instance) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", p.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", p.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", p.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", p.handleInitError)
	// aws-lambda-go registers an extension when a handler asks for SIGTERM
	// (lambda.WithEnableSIGTERM); it then long-polls for events that never come.
	mux.HandleFunc("POST /2020-01-01/extension/register", p.handleExtensionRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	return mux
}

// handleNext blocks until an invocation is handed over (or the process goes
// away), then sends its event and metadata.
func (p *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	p.readyOnce.Do(func() {
		p.readyAt = time.Now()
		close(p.ready)
	})
	var inv *invocation
	select {
	case inv = <-p.next:
	case <-r.Context().Done():
		return
	}
	p.mu.Lock()
	p.current = inv
	p.mu.Unlock()

	h := w.Header()
	h.Set(hdrRequestID, inv.id)
	h.Set(hdrDeadlineMS, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(hdrFunctionARN, p.fn.arn)
	h.Set(hdrTraceID, newTraceID())
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(inv.payload)
}

func (p *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	inv := p.take(r.PathValue("id"))
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	switch {
	case len(body) > maxResponseBytes:
		inv.done <- result{err: &FunctionError{Type: ErrTypeTooLarge,
			Message: "Response payload size exceeded maximum allowed payload size (6291556 bytes)."}}
		apiError(w, http.StatusRequestEntityTooLarge, ErrTypeTooLarge, "response too large")
		return
	case r.Trailer.Get(trlErrorType) != "":
		inv.done <- result{err: trailerError(r.Trailer)}
	default:
		inv.done <- result{payload: body}
	}
	accepted(w)
}

func (p *instance) handleError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes))
	inv := p.take(r.PathValue("id"))
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	inv.done <- result{err: parseError(body, r.Header.Get(hdrErrorType))}
	accepted(w)
}

func (p *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes))
	select {
	case p.initErr <- parseError(body, r.Header.Get(hdrErrorType)):
	default: // one is enough
	}
	accepted(w)
}

func (p *instance) handleExtensionRegister(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Lambda-Extension-Identifier", newRequestID())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"functionName":    p.fn.cfg.Name,
		"functionVersion": "$LATEST",
		"handler":         "bootstrap",
	})
}

// take returns the current invocation if its id is id, and clears it: each
// invocation is answered once.
func (p *instance) take(id string) *invocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil || p.current.id != id {
		return nil
	}
	inv := p.current
	p.current = nil
	return inv
}

// parseError reads the error document a runtime posts
// ({"errorType": ..., "errorMessage": ..., "stackTrace": ...}).
func parseError(body []byte, typeHeader string) *FunctionError {
	e := &FunctionError{Raw: body}
	if err := json.Unmarshal(body, e); err != nil || (e.Type == "" && e.Message == "") {
		e.Message = string(body)
	}
	if e.Type == "" {
		e.Type = typeHeader
	}
	if e.Type == "" {
		e.Type = "Unhandled"
	}
	return e
}

func trailerError(t http.Header) *FunctionError {
	body, err := base64.StdEncoding.DecodeString(t.Get(trlErrorBody))
	if err != nil {
		body = nil
	}
	return parseError(body, t.Get(trlErrorType))
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}
