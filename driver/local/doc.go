// Package local runs instances in-process, without Nomad, for `nimbus dev`,
// `nimbus local invoke` and tests. It is the local adapter of the same
// instance code the Nomad driver runs: a launcher that gives each instance
// a state directory under its base directory and a loopback invoke address,
// and image functions one layer cache under it (Launcher.ImageCacheDir).
//
// It may import driver/instance and driver/invokeapi.
package local
