// Package nomadplugin is the Nomad task driver "nimbus": it serves Nomad's
// BasePlugin and Driver gRPC services over go-plugin (Nomad's handshake, gRPC
// only), turns a task's `config {}` block (driver/taskconfig) into an
// instance launch config (driver/instance), starts one detached instance
// process per task (`nimbus-driver instance --config FILE`, its own session
// so plugin and agent restarts never kill it), and tracks it through
// WaitTask, StopTask, DestroyTask, stats, signals, exec and — after a plugin
// or agent restart — RecoverTask from the state stored in the task handle.
//
// RunInstance is the body of the instance subcommand.
//
// The plugin config's uid_range, allow_root and chroot_env configure the
// instances' sandbox (driver/sandbox); the fingerprint reports whether the
// host isolates environments (driver.nimbus.isolation), and ExecTask
// enters a running environment when one is isolated.
//
// Code and layers named by URL and sha256 in the task config (code_url,
// layer_urls) come from the client-wide bundle cache (driver/bundlecache,
// bundle_cache_dir / bundle_cache_max_mb): StartTask downloads only what the
// client lacks, emits a "Bundles ready" event with the fetch time, and the
// instance pins its entries (Config.PinDirs) for as long as it runs.
//
// It imports only driver/** (taskconfig, instance, sandbox, bundlecache and its
// own generated protos), runtimes (interpreter detection for the fingerprint) and
// external modules.
package nomadplugin
