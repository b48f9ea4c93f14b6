package suppress

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"corriere/core/event"
)

// CSVHeader is the header row of exported files, and the columns import
// knows. Import needs tenant and address; the other columns may be
// missing (added then defaults to the time of the import, source to
// "import") and may come in any order.
var CSVHeader = []string{"tenant", "address", "category", "reason", "source", "added"}

// maxCSVErrors caps the row errors ReadCSV reports before giving up.
const maxCSVErrors = 20

// RowError is an error in one row of a CSV file.
type RowError struct {
	// Line is the 1-based line of the file the row starts on.
	Line int
	Err  error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *RowError) Unwrap() error { return e.Err }

// ReadCSV parses and validates a CSV file of entries (see CSVHeader). It
// reads the whole file and returns either every entry or the errors of
// every bad row (up to 20), each a *RowError naming its line, joined with
// errors.Join. Addresses are normalised; an empty added column is left
// zero, to be filled with the time of the import.
func ReadCSV(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	// Spreadsheets often start a UTF-8 file with a byte order mark.
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("suppress: empty CSV file: expected the header " + strings.Join(CSVHeader, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("suppress: CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, k := range CSVHeader {
			known = known || h == k
		}
		switch {
		case !known:
			return nil, &RowError{Line: 1, Err: fmt.Errorf("unknown column %q: the columns are %s", h, strings.Join(CSVHeader, ","))}
		case col[h] != 0:
			return nil, &RowError{Line: 1, Err: fmt.Errorf("column %q appears twice", h)}
		}
		col[h] = i + 1 // 0 means absent
	}
	if col["tenant"] == 0 || col["address"] == 0 {
		return nil, &RowError{Line: 1, Err: fmt.Errorf("the header must name the columns tenant and address (got %s)", strings.Join(header, ","))}
	}
	var entries []Entry
	var errs []error
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				errs = append(errs, &RowError{Line: pe.StartLine, Err: pe.Err})
				if pe.Err == csv.ErrQuote {
					// An unterminated quoted field runs to the end of the
					// file: what follows cannot be read as rows.
					break
				}
				if len(errs) >= maxCSVErrors {
					break
				}
				continue
			}
			return nil, fmt.Errorf("suppress: read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			errs = append(errs, &RowError{Line: line, Err: fmt.Errorf("%d fields, the header has %d", len(rec), len(header))})
		} else if e, err := parseRow(rec, col); err != nil {
			errs = append(errs, &RowError{Line: line, Err: err})
		} else {
			entries = append(entries, e)
		}
		if len(errs) >= maxCSVErrors {
			errs = append(errs, fmt.Errorf("stopped after %d errors", maxCSVErrors))
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return entries, nil
}

func parseRow(rec []string, col map[string]int) (Entry, error) {
	field := func(name string) string {
		if i := col[name]; i > 0 {
			return strings.TrimSpace(rec[i-1])
		}
		return ""
	}
	e := Entry{
		Tenant: field("tenant"), Category: event.Category(field("category")), Reason: field("reason"),
		Source: field("source"),
	}
	if err := ValidateTenant(e.Tenant); err != nil {
		return e, err
	}
	a, err := NormalizeAddress(field("address"))
	if err != nil {
		return e, err
	}
	e.Address = a
	if e.Source == "" {
		e.Source = SourceImport
	}
	if s := field("added"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return e, fmt.Errorf("added %q is not an RFC 3339 time such as 2026-11-30T14:05:00Z", s)
		}
		e.Added = t.UTC()
	}
	return e, nil
}

// CSVWriter writes entries as CSV, header first.
type CSVWriter struct {
	w *csv.Writer
}

// NewCSVWriter writes the header row to w and returns a writer for the
// entries.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return nil, fmt.Errorf("suppress: write CSV: %w", err)
	}
	return &CSVWriter{w: cw}, nil
}

// Write writes one entry.
func (c *CSVWriter) Write(e Entry) error {
	added := ""
	if !e.Added.IsZero() {
		added = e.Added.UTC().Format(time.RFC3339)
	}
	if err := c.w.Write([]string{e.Tenant, e.Address, string(e.Category), e.Reason, e.Source, added}); err != nil {
		return fmt.Errorf("suppress: write CSV: %w", err)
	}
	return nil
}

// Flush writes buffered rows and reports any write error.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("suppress: write CSV: %w", err)
	}
	return nil
}

// ImportCSV reads a CSV file (see ReadCSV) and imports it (see Import): a
// file with any bad row changes nothing. It returns the number of entries
// imported.
func (l *List) ImportCSV(r io.Reader) (int, error) {
	entries, err := ReadCSV(r)
	if err != nil {
		return 0, err
	}
	if err := l.Import(entries); err != nil {
		return 0, err
	}
	return len(entries), nil
}

// ExportCSV writes the entries of tenant (AllTenants for every tenant) to
// w as CSV.
func (l *List) ExportCSV(w io.Writer, tenant string) error {
	cw, err := NewCSVWriter(w)
	if err != nil {
		return err
	}
	if err := l.Scan(tenant, cw.Write); err != nil {
		return err
	}
	return cw.Flush()
}
