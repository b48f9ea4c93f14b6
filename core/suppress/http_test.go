package suppress

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdminHandlers(t *testing.T) {
	l, _ := openList(t, t.TempDir())
	mux := http.NewServeMux()
	for p, h := range AdminHandlers(l) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := &Client{Addr: strings.TrimPrefix(srv.URL, "http://")}

	e, err := c.Add(Entry{Tenant: "acme", Address: "Gone@Dest.Example", Reason: "asked by the customer"})
	if err != nil || e.Address != "gone@dest.example" || e.Source != SourceManual || !e.Added.Equal(day) {
		t.Fatalf("Add = %+v, %v", e, err)
	}
	if _, err := c.Add(Entry{Tenant: "", Address: "relay@dest.example"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Add(Entry{Tenant: "acme", Address: "not an address"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "not an address") {
		t.Errorf("bad Add = %v", err)
	}

	var got []string
	if err := c.Scan(AllTenants, func(e Entry) error { got = append(got, e.Tenant+"/"+e.Address); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "/relay@dest.example acme/gone@dest.example" {
		t.Errorf("Scan(all) = %v", got)
	}
	got = nil
	c.Scan("", func(e Entry) error { got = append(got, e.Address); return nil })
	if strings.Join(got, " ") != "relay@dest.example" {
		t.Errorf("Scan(\"\") = %v", got)
	}

	var csv bytes.Buffer
	if err := c.ExportCSV(&csv, "acme"); err != nil || !strings.HasPrefix(csv.String(), "tenant,address,") || strings.Count(csv.String(), "\n") != 2 {
		t.Errorf("ExportCSV = %q, %v", csv.String(), err)
	}
	n, err := c.ImportCSV(strings.NewReader("tenant,address\nbeta,a@dest.example\nbeta,b@dest.example\n"))
	if err != nil || n != 2 {
		t.Errorf("ImportCSV = %d, %v", n, err)
	}
	_, err = c.ImportCSV(strings.NewReader("tenant,address\nbeta,a@dest.example\nbeta,broken\n"))
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "line 3") {
		t.Errorf("bad ImportCSV = %v", err)
	}

	if e, err := c.Remove("acme", "gone@dest.example"); err != nil || e.Reason != "asked by the customer" {
		t.Errorf("Remove = %+v, %v", e, err)
	}
	_, err = c.Remove("acme", "gone@dest.example")
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("second Remove = %v; want 404", err)
	}
	resp, err := http.Post(srv.URL+apiPath, "application/json", strings.NewReader(`{"tenant": "acme", "adress": "typo@dest.example"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field: status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+apiPath+"?address=a@dest.example", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("remove without tenant: status %d", resp.StatusCode)
	}
}
