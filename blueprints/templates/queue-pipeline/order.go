package main

import (
	"errors"
	"fmt"
	"strings"
)

// Order is what producers POST to the ingest function and what travels
// through the stream.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Items    []Line `json:"items"`
}

// Line is one item of an order.
type Line struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// Priced is the processor's result for one order.
type Priced struct {
	ID         string `json:"id"`
	Customer   string `json:"customer"`
	TotalCents int    `json:"total_cents"`
	Sequence   uint64 `json:"sequence"`
}

// Check is ingest's validation: the shape only. Whether the items exist is
// the processor's business (a catalogue lookup in a real system).
func (o *Order) Check() error {
	var errs []string
	if o.ID == "" || len(o.ID) > 64 || strings.ContainsAny(o.ID, " \t\r\n") {
		errs = append(errs, "id must be 1-64 characters without spaces")
	}
	if o.Customer == "" {
		errs = append(errs, "customer is required")
	}
	if len(o.Items) == 0 || len(o.Items) > 100 {
		errs = append(errs, "items must hold 1-100 lines")
	}
	for i, l := range o.Items {
		if l.SKU == "" || l.Qty < 1 || l.Qty > 1000 {
			errs = append(errs, fmt.Sprintf("items[%d]: sku is required and qty must be 1-1000", i))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// prices is the price list in cents. Replace it with your catalogue.
var prices = map[string]int{"tea": 350, "coffee": 420, "cake": 500}

// errUnknownSKU fails an order the processor cannot price.
var errUnknownSKU = errors.New("unknown sku")

// Price totals an order.
func Price(o Order) (int, error) {
	total := 0
	for _, l := range o.Items {
		p, ok := prices[l.SKU]
		if !ok {
			return 0, fmt.Errorf("%w %q", errUnknownSKU, l.SKU)
		}
		total += p * l.Qty
	}
	return total, nil
}
