package suppress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The admin API endpoints, mounted with admin.Options.Handlers:
//
//	GET    /api/suppression?tenant=T          {"entries": [Entry...]}
//	POST   /api/suppression                   Entry in, the stored Entry out
//	DELETE /api/suppression?tenant=T&address=A  the removed Entry; 404 if absent
//	GET    /api/suppression/export?tenant=T   text/csv
//	POST   /api/suppression/import            text/csv in, {"imported": N} out
//
// Without tenant=, list and export cover every tenant; "tenant=" selects
// relayed mail. Errors are {"error": "sentence"} with 400 (bad request),
// 404 (remove of an absent entry) or 500 (storage).
const apiPath = "/api/suppression"

// Limits on request bodies.
const (
	maxEntryBody  = 64 << 10
	maxImportBody = 256 << 20
)

// ListResponse is the answer of GET /api/suppression.
type ListResponse struct {
	Entries []Entry `json:"entries"`
}

// ImportResponse is the answer of POST /api/suppression/import.
type ImportResponse struct {
	Imported int `json:"imported"`
}

// errorResponse is the body of every error answer, as in package admin.
type errorResponse struct {
	Error string `json:"error"`
}

// AdminHandlers returns the list's endpoints keyed by ServeMux pattern, for
// admin.Options.Handlers.
func AdminHandlers(l *List) map[string]http.Handler {
	h := &handlers{l: l}
	return map[string]http.Handler{
		"GET " + apiPath:              http.HandlerFunc(h.list),
		"POST " + apiPath:             http.HandlerFunc(h.add),
		"DELETE " + apiPath:           http.HandlerFunc(h.remove),
		"GET " + apiPath + "/export":  http.HandlerFunc(h.export),
		"POST " + apiPath + "/import": http.HandlerFunc(h.importCSV),
	}
}

type handlers struct{ l *List }

// tenantParam returns the tenant= of a request, AllTenants when absent.
func tenantParam(r *http.Request) string {
	q := r.URL.Query()
	if !q.Has("tenant") {
		return AllTenants
	}
	return q.Get("tenant")
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	res := ListResponse{Entries: []Entry{}}
	err := h.l.Scan(tenantParam(r), func(e Entry) error {
		res.Entries = append(res.Entries, e)
		return nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handlers) add(w http.ResponseWriter, r *http.Request) {
	var e Entry
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEntryBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("suppress: the body must be one JSON entry (tenant, address, category, reason, source): %w", err))
		return
	}
	if e.Source == "" {
		e.Source = SourceManual
	}
	if err := ValidateTenant(e.Tenant); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if _, err := NormalizeAddress(e.Address); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	stored, err := h.l.Add(e)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

func (h *handlers) remove(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("tenant") || q.Get("address") == "" {
		writeError(w, http.StatusBadRequest, errors.New("suppress: remove needs tenant= (empty for relayed mail) and address="))
		return
	}
	if _, err := NormalizeAddress(q.Get("address")); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	e, err := h.l.Remove(q.Get("tenant"), q.Get("address"))
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

func (h *handlers) export(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	// Once rows are sent the status cannot change; a storage error then
	// cuts the file short, which the client sees as a broken transfer.
	if err := h.l.ExportCSV(w, tenantParam(r)); err != nil {
		panic(http.ErrAbortHandler)
	}
}

func (h *handlers) importCSV(w http.ResponseWriter, r *http.Request) {
	entries, err := ReadCSV(http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := h.l.Import(entries); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ImportResponse{Imported: len(entries)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client is gone if this fails
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorResponse{Error: err.Error()})
}

// Client calls a node's suppression endpoints. Its methods mirror List's,
// so a tool can work on a running node or on a stopped node's spool alike.
type Client struct {
	// Addr is the admin API's host:port.
	Addr string
	// Token authorises the calls.
	Token string
	// HTTP is the client used; the default has a 60s timeout.
	HTTP *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's sentence.
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap makes a 404 match ErrNotFound.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

func (c *Client) do(method, path string, q url.Values, contentType string, body io.Reader) (*http.Response, error) {
	u := "http://" + c.Addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, fmt.Errorf("suppress: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("suppress: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var er errorResponse
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(raw, &er) != nil || er.Error == "" {
			er.Error = fmt.Sprintf("suppress: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
		}
		return nil, &APIError{Status: resp.StatusCode, Message: er.Error}
	}
	return resp, nil
}

func (c *Client) doJSON(method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("suppress: %w", err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(method, path, q, ct, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("suppress: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// tenantQuery selects tenant, or every tenant for AllTenants.
func tenantQuery(tenant string) url.Values {
	if tenant == AllTenants {
		return nil
	}
	return url.Values{"tenant": {tenant}}
}

// Add is List.Add on the node; an empty Source is SourceManual.
func (c *Client) Add(e Entry) (Entry, error) {
	var out Entry
	err := c.doJSON(http.MethodPost, apiPath, nil, e, &out)
	return out, err
}

// Remove is List.Remove on the node.
func (c *Client) Remove(tenant, addr string) (Entry, error) {
	var out Entry
	err := c.doJSON(http.MethodDelete, apiPath, url.Values{"tenant": {tenant}, "address": {addr}}, nil, &out)
	return out, err
}

// Scan is List.Scan on the node.
func (c *Client) Scan(tenant string, fn func(Entry) error) error {
	var res ListResponse
	if err := c.doJSON(http.MethodGet, apiPath, tenantQuery(tenant), nil, &res); err != nil {
		return err
	}
	for _, e := range res.Entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// ImportCSV is List.ImportCSV on the node.
func (c *Client) ImportCSV(r io.Reader) (int, error) {
	resp, err := c.do(http.MethodPost, apiPath+"/import", nil, "text/csv", r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var res ImportResponse
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return 0, fmt.Errorf("suppress: import: decode: %w", err)
	}
	return res.Imported, nil
}

// ExportCSV is List.ExportCSV on the node.
func (c *Client) ExportCSV(w io.Writer, tenant string) error {
	resp, err := c.do(http.MethodGet, apiPath+"/export", tenantQuery(tenant), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("suppress: export: %w", err)
	}
	return nil
}
