package api

// versionRoutes are the management operations on versions, aliases and
// layers.
var versionRoutes = []route{}
