package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/nimbus-fn/nimbus/specs"
)

// originAllowed reports the Access-Control-Allow-Origin value for origin:
// "*" when the config allows any origin without credentials, the origin
// itself when listed (or with "*" and credentials), "" when not allowed.
func originAllowed(c *specs.CORS, origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return origin
			}
			return "*"
		}
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}

// applyCORS sets the configured CORS response headers (overriding any the
// function set).
func applyCORS(h http.Header, r *http.Request, c *specs.CORS) {
	allow := originAllowed(c, r.Header.Get("Origin"))
	if allow == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		addVary(h, "Origin")
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
}

// preflight answers a CORS preflight from the config, without invoking the
// function.
func preflight(w http.ResponseWriter, r *http.Request, c *specs.CORS) {
	h := w.Header()
	allow := originAllowed(c, r.Header.Get("Origin"))
	if allow == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		addVary(h, "Origin")
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.AllowMethods) > 0 {
		h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
	}
	if len(c.AllowHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
	}
	w.WriteHeader(http.StatusOK)
}

// addVary adds token to the Vary header unless it is already listed
// (applyCORS runs before and after the function's headers, and a function
// may send its own Vary).
func addVary(h http.Header, token string) {
	for _, v := range h.Values("Vary") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return
			}
		}
	}
	h.Add("Vary", token)
}
