// Package nimbus is AWS Lambda's feature set, native to HashiCorp Nomad.
//
// The module is organised as described in ARCHITECTURE.md: specs (HCL function
// specs), jobs (the pure spec → Nomad job compiler), driver (the Nomad task
// driver and the instance that hosts Lambda execution environments), gateway
// (function URLs, the Invoke API, routing and scaling), autoscaler (Nomad
// Autoscaler plugins for provisioned concurrency) and cmd (thin mains).
package nimbus
