package consul

import "github.com/nimbus-fn/nimbus/gateway/catalog"

// URLFunctions picks the functions with a URL config, in the form
// Registrar.SetURLFunctions takes. Wire it to a catalog's Watch:
//
//	cat.Watch(func(s *catalog.Snapshot) { reg.SetURLFunctions(ctx, consul.URLFunctions(s.Functions())) })
func URLFunctions(fns []*catalog.Function) []URLFunction {
	var out []URLFunction
	for _, f := range fns {
		u := f.URL()
		if u == nil {
			continue
		}
		q := u.Qualifier
		if q == "" {
			q = catalog.Latest
		}
		out = append(out, URLFunction{Function: f.Name, Qualifier: q, Auth: u.Auth, InvokeMode: u.InvokeMode})
	}
	return out
}
