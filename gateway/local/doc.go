// Package local is dev mode's capacity: a router.Scaler and a
// discovery.Source over a Launcher that starts instances on this machine
// (cmd/nimbus adapts driver/local to it). OnDemand launches or stops
// instances to reach the wanted count; Instances lists the ready ones. When
// the catalog reloads, instances running an outdated spec are replaced.
//
// Provisioned concurrency: for every version whose spec has a
// provisioned_concurrency block, Provision keeps ceil(min /
// environments_per_instance) instances of the provisioned group — raised to
// a schedule window's min while that window is open (cron via
// hashicorp/cronexpr, as the autoscaler's strategy plugin reads it in a
// cluster) — launched through a ProvisionedLauncher, which initialises every
// environment before the instance is listed. RunProvisioned repeats it so
// windows open and close; Refresh runs it after a reload so a changed spec
// or code gets fresh provisioned instances (new ones first). A changed
// provisioned_concurrency block alone changes how many instances run, not
// which: it restarts nothing.
//
// It may import gateway/**, specs and driver/invokeapi.
package local
