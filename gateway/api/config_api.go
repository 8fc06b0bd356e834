package api

// configRoutes are the management operations on concurrency, provisioned
// concurrency, function URL configs, tags and account settings.
var configRoutes = []route{}
