package reset

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/claimpage"
	"github.com/mspvault/orgkey/internal/httpapi"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
)

// Route keys of the HTTP API (payload 2.0 RouteKey) this function serves: the page a
// confirmation link opens (public; it changes nothing) and the kept admin's
// confirmation (behind the JWT authorizer, the token in the body).
const (
	RouteConfirmPage = "GET " + mailpkg.ResetConfirmPath
	RouteConfirmHead = "HEAD " + mailpkg.ResetConfirmPath
	RouteConfirm     = "POST " + mailpkg.ResetConfirmPath
	// RouteCancel: an org admin cancels a reset that has not started.
	RouteCancel = "POST " + mailpkg.ResetCancelPath
)

// HandleHTTP serves one request of the confirmation routes. It always answers; it
// never returns an error to the runtime.
func (h *Handler) HandleHTTP(ctx context.Context, req httpapi.Request) (httpapi.Response, error) {
	var (
		resp  httpapi.Response
		err   error
		attrs []slog.Attr
		flow  = "reset-confirm"
	)
	switch req.RouteKey {
	case RouteConfirmPage, RouteConfirmHead:
		flow = "reset-confirm-page"
		resp = httpapi.Response{StatusCode: http.StatusOK, Headers: claimpage.Headers(h.Page)}
		if req.RouteKey == RouteConfirmPage {
			resp.Body = claimpage.KindPage(claimpage.KindResetConfirm, claimpage.Language(httpapi.Header(req, "accept-language")), h.Page)
		}
	case RouteConfirm:
		resp, attrs, err = h.confirm(ctx, req)
	case RouteCancel:
		flow = "reset-cancel"
		resp, attrs, err = h.cancel(ctx, req)
	default:
		err = apperr.New(apperr.NotFound, "route_not_found", "no such route")
		resp = httpapi.Error(err)
	}
	httpapi.LogRequest(ctx, h.Log, flow, req, resp.StatusCode, err, attrs...)
	return resp, nil
}

type confirmRequest struct {
	Token string `json:"token"`
}

type confirmResponse struct {
	Status   string `json:"status"`
	TicketID string `json:"ticketId"`
}

var (
	errTokenInQuery = apperr.New(apperr.Invalid, "query_not_allowed", "send the link's token in the JSON body, never in the URL")
	errLinkGone     = apperr.New(apperr.NotFound, "link_gone", "this link is no longer valid")
	errNoIdentity   = apperr.New(apperr.Unauthorized, ReasonConfirmNoIdentity, "the request carries no signed-in user")
)

func (h *Handler) confirm(ctx context.Context, req httpapi.Request) (httpapi.Response, []slog.Attr, error) {
	if req.RawQueryString != "" || len(req.QueryStringParameters) > 0 {
		return httpapi.Error(errTokenInQuery), nil, errTokenInQuery
	}
	claims := httpapi.Claims(req)
	sub := claims["sub"]
	if sub == "" {
		return httpapi.Error(errNoIdentity), nil, errNoIdentity
	}
	if err := httpapi.AccessTokenOnly(claims); err != nil {
		return httpapi.Error(err), nil, err
	}
	attrs := []slog.Attr{slog.String("user", truncate(sub, maxID))}
	var body confirmRequest
	if err := httpapi.Decode(req, &body); err != nil {
		return httpapi.Error(err), attrs, err
	}
	res, err := h.Service.Confirm(ctx, body.Token, sub, Meta{
		RequestID: req.RequestContext.RequestID, SourceIP: httpapi.SourceIP(req), UserAgent: httpapi.UserAgent(req),
	})
	if res.TenantID != "" {
		attrs = append(attrs, slog.String("tenant", res.TenantID), slog.String("ticket", res.TicketID))
	}
	switch {
	case err == nil:
		return httpapi.JSON(http.StatusOK, confirmResponse{Status: "confirmed", TicketID: res.TicketID}), attrs, nil
	case IsGoneConfirmation(err):
		resp := httpapi.Error(errLinkGone)
		resp.StatusCode = http.StatusGone
		return resp, attrs, err
	default:
		return httpapi.Error(err), attrs, err
	}
}

type cancelRequest struct {
	TicketID string `json:"ticketId"`
}

func (h *Handler) cancel(ctx context.Context, req httpapi.Request) (httpapi.Response, []slog.Attr, error) {
	claims := httpapi.Claims(req)
	sub := claims["sub"]
	if sub == "" {
		return httpapi.Error(errNoIdentity), nil, errNoIdentity
	}
	if err := httpapi.AccessTokenOnly(claims); err != nil {
		return httpapi.Error(err), nil, err
	}
	attrs := []slog.Attr{slog.String("user", truncate(sub, maxID))}
	var body cancelRequest
	if err := httpapi.Decode(req, &body); err != nil {
		return httpapi.Error(err), attrs, err
	}
	if err := (Action{Action: "status", TicketID: body.TicketID}).validate(); err != nil {
		return httpapi.Error(err), attrs, err
	}
	attrs = append(attrs, slog.String("ticket", truncate(body.TicketID, maxID)))
	rep, err := h.Service.CancelByAdmin(ctx, body.TicketID, sub, Meta{
		RequestID: req.RequestContext.RequestID, SourceIP: httpapi.SourceIP(req), UserAgent: httpapi.UserAgent(req),
	})
	if err != nil {
		return httpapi.Error(err), attrs, err
	}
	attrs = append(attrs, slog.String("tenant", rep.TenantID))
	return httpapi.JSON(http.StatusOK, confirmResponse{Status: string(StatusCancelled), TicketID: rep.TicketID}), attrs, nil
}
