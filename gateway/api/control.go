package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/functions"
	"github.com/nimbus-fn/nimbus/specs"
)

// functionConfiguration is the subset of Lambda's FunctionConfiguration the
// CLI and console read.
type functionConfiguration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime,omitempty"`
	Handler          string            `json:"Handler,omitempty"`
	Description      string            `json:"Description"`
	MemorySize       int               `json:"MemorySize"`
	Timeout          int               `json:"Timeout"`
	Version          string            `json:"Version"`
	Environment      *environment      `json:"Environment,omitempty"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage,omitempty"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	State            string            `json:"State"`
	LastUpdateStatus string            `json:"LastUpdateStatus"`

	Role                       string        `json:"Role,omitempty"`
	CodeSize                   int64         `json:"CodeSize"`
	CodeSha256                 string        `json:"CodeSha256,omitempty"`
	LastModified               string        `json:"LastModified,omitempty"`
	RevisionID                 string        `json:"RevisionId,omitempty"`
	Layers                     []layerConfig `json:"Layers,omitempty"`
	StateReason                string        `json:"StateReason,omitempty"`
	StateReasonCode            string        `json:"StateReasonCode,omitempty"`
	LastUpdateStatusReason     string        `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string        `json:"LastUpdateStatusReasonCode,omitempty"`
	// ImageConfigResponse is an image function's ImageConfig overrides.
	ImageConfigResponse *imageConfigResponse `json:"ImageConfigResponse,omitempty"`
}

type environment struct {
	Variables map[string]string `json:"Variables"`
}

type ephemeralStorage struct {
	Size int `json:"Size"`
}

func (a *API) configuration(fnName, version string, s *specs.Function) *functionConfiguration {
	c := &functionConfiguration{
		FunctionName:     fnName,
		FunctionArn:      a.functionARN(fnName, unqualifiedLatest(version)),
		Runtime:          s.Runtime,
		Handler:          s.Handler,
		Description:      s.Description,
		MemorySize:       s.MemoryMB,
		Version:          version,
		PackageType:      "Zip",
		Architectures:    []string{"x86_64"},
		State:            "Active",
		LastUpdateStatus: "Successful",
	}
	if d, err := time.ParseDuration(s.Timeout); err == nil {
		c.Timeout = int(d / time.Second)
	}
	if len(s.Environment) > 0 {
		c.Environment = &environment{Variables: s.Environment}
	}
	if s.EphemeralStorageMB > 0 {
		c.EphemeralStorage = &ephemeralStorage{Size: s.EphemeralStorageMB}
	}
	describeImage(c, s)
	return c
}

func writeJSON(w http.ResponseWriter, requestID string, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerRequestID, requestID)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// serveListFunctions answers ListFunctions with every function's $LATEST
// (or, with FunctionVersion=ALL, every version), a page at a time
// (Marker, MaxItems ≤ 10000, default 50).
func (a *API) serveListFunctions(w http.ResponseWriter, r *http.Request) {
	requestID := uuid.NewString()
	if _, e := a.authenticateAdmin(r, nil); e != nil {
		writeAPIError(w, requestID, e)
		return
	}
	q := r.URL.Query()
	maxItems := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			writeAPIError(w, requestID, invalidParam("1 validation error detected: Value '"+s+"' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"))
			return
		}
		maxItems = n
	}
	if fv := q.Get("FunctionVersion"); fv != "" && fv != "ALL" {
		writeAPIError(w, requestID, invalidParam("1 validation error detected: Value '"+fv+"' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"))
		return
	}
	ctx := r.Context()
	fns, err := a.catalog.Functions(ctx)
	if err != nil {
		writeAPIError(w, requestID, &apiError{Code: CodeService, Message: "reading the catalog: " + err.Error()})
		return
	}
	if a.opts.Manage != nil {
		// Functions created but not in service yet are listed too.
		stored, err := a.opts.Manage.Functions.List(ctx)
		if err != nil {
			writeAPIError(w, requestID, &apiError{Code: CodeService, Message: "reading the function store: " + err.Error()})
			return
		}
		known := make(map[string]bool, len(fns))
		for _, fn := range fns {
			known[fn.Name] = true
		}
		for _, f := range stored {
			if !known[f.Name] {
				fns = append(fns, &catalog.Function{Name: f.Name, Versions: map[string]*specs.Function{catalog.Latest: f.Spec}})
			}
		}
		sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	}
	all := q.Get("FunctionVersion") == "ALL"
	type item struct {
		key     string
		fn      *catalog.Function
		version string
	}
	var items []item
	for _, fn := range fns {
		for i, v := range fn.VersionNames() {
			if !all && v != catalog.Latest {
				continue
			}
			// Keys sort as the list does: name, then $LATEST, then numbers.
			items = append(items, item{key: fn.Name + "\x00" + fmt.Sprintf("%08d", i), fn: fn, version: v})
		}
	}
	marker := q.Get("Marker")
	if marker != "" {
		raw, err := base64.RawURLEncoding.DecodeString(marker)
		if err != nil {
			writeAPIError(w, requestID, invalidParam("Marker is not one ListFunctions returned"))
			return
		}
		marker = string(raw)
	}
	page, next := listPage(items, func(it item) string { return it.key }, marker, maxItems)
	list := make([]*functionConfiguration, 0, len(page))
	for _, it := range page {
		spec := it.fn.Versions[it.version]
		if it.version != catalog.Latest {
			list = append(list, a.describePublished(ctx, it.fn.Name, it.version, spec))
			continue
		}
		var stored *functions.Function
		if a.opts.Manage != nil {
			if f, err := a.opts.Manage.Functions.Get(ctx, it.fn.Name); err == nil {
				stored, spec = f, f.Spec
			}
		}
		list = append(list, a.describe(ctx, it.fn.Name, it.version, spec, stored))
	}
	out := map[string]any{"Functions": list}
	if next != "" {
		out["NextMarker"] = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	writeJSON(w, requestID, out)
}

// URLFor is a function's host-based URL as reached through host (the
// gateway's host:port as the caller used it).
func (a *API) URLFor(function, host string) string {
	port := ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		port = host[i:]
	}
	return a.opts.Scheme + "://" + function + "." + a.opts.URLDomain + port + "/"
}

// unqualifiedLatest: Lambda names $LATEST's configuration by the
// unqualified function ARN.
func unqualifiedLatest(version string) string {
	if version == catalog.Latest {
		return ""
	}
	return version
}
