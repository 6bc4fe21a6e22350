package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mspvault/orgkey/internal/dev/lambdarun"
)

// InvokeAPI serves the Lambda Invoke API
// (POST /2015-03-31/functions/{name}/invocations), as `sam local
// start-lambda` does, so that `aws lambda invoke --endpoint-url ...`, the AWS
// SDKs and cognito-local's triggers reach the functions. A function is named
// by its logical id (or an ARN ending in it).
type InvokeAPI struct {
	Functions map[string]bool // the names it serves
	Invoker   Invoker
	Log       *slog.Logger
}

// maxInvokePayload is Lambda's synchronous request limit.
const maxInvokePayload = 6 << 20

func (a *InvokeAPI) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", a.invoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "this local endpoint serves only Invoke")
	})
	return mux
}

func (a *InvokeAPI) invoke(w http.ResponseWriter, r *http.Request) {
	name := functionName(r.PathValue("name"))
	if !a.Functions[name] {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException",
			"Function not found: arn:aws:lambda:"+Region+":"+AccountID+":function:"+name)
		return
	}
	if q := r.URL.Query().Get("Qualifier"); q != "" && q != "$LATEST" {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "only $LATEST runs locally")
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload+1))
	if err != nil {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the payload")
		return
	}
	if len(payload) > maxInvokePayload {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}

	switch r.Header.Get("X-Amz-Invocation-Type") {
	case "", "RequestResponse":
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		// Asynchronous: accepted now, run in the background.
		go func() {
			if _, err := a.Invoker.Invoke(context.WithoutCancel(r.Context()), name, payload); err != nil {
				a.log().Error("asynchronous invocation failed", "function", name, "error", err.Error())
			}
		}()
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.WriteHeader(http.StatusAccepted)
		return
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "unknown X-Amz-Invocation-Type")
		return
	}

	out, err := a.Invoker.Invoke(r.Context(), name, payload)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	var fe *lambdarun.FunctionError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
		w.Write(out)
	case errors.As(err, &fe):
		// What Lambda answers for a function error: 200, the error document,
		// and X-Amz-Function-Error.
		a.log().Info("function error", "function", name, "type", fe.Type)
		doc := fe.Raw
		if !json.Valid(doc) {
			doc, _ = json.Marshal(fe)
		}
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		w.Write(doc)
	default:
		a.log().Error("invocation failed", "function", name, "error", err.Error())
		lambdaError(w, http.StatusInternalServerError, "ServiceException", "the local runtime could not run the function")
	}
}

func (a *InvokeAPI) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// functionName takes a name, partial ARN or ARN (with or without a
// qualifier) and returns the function's name.
func functionName(s string) string {
	if i := strings.LastIndex(s, ":function:"); i >= 0 {
		s = s[i+len(":function:"):]
	} else {
		s = strings.TrimPrefix(s, "function:")
	}
	name, _, _ := strings.Cut(s, ":")
	return name
}

// lambdaError answers in the shape the AWS SDKs decode for the Lambda API.
func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"Type": "User", "message": msg})
	w.Write(b)
}
