// Package rabbittest runs a real RabbitMQ node (the Debian rabbitmq-server
// package's /usr/lib/rabbitmq/bin/rabbitmq-server) for tests, as the
// current user, inside a temporary directory, on free loopback ports: its
// own AMQP port, Erlang distribution port and epmd port, its own node name
// (nimbus-<random>@localhost), database, logs, config and an empty plugin
// list, so it never touches a system RabbitMQ or a system epmd.
//
// A node takes several seconds (tens on a loaded machine) to boot, so a
// test package shares one: its TestMain calls Main, which runs the tests
// and then stops the shared node; tests call Start (or Shared) to get it,
// and the first call boots it. Tests that need a node of their own (one
// they stop or restart) call New, which stops that node on cleanup.
// Each node has an epmd of its own, run as a child of the test process
// (left to Erlang it would daemonise out of reach). Stopping a node
// terminates its process group (the start script, beam.smp and its
// helpers) and then its epmd, leaving no process behind.
//
// Every node has the user User with a random password and two virtual
// hosts, "/" and ExtraVhost; URL and VhostURL return AMQP URLs with the
// credentials. DeclareQueue, Publish, Ready and DeleteQueue are small
// helpers over github.com/rabbitmq/amqp091-go.
//
// Tests skip, saying why, only when rabbitmq-server (or Erlang) is not
// installed.
//
// It is test support only: production packages must not import it. It may
// import anything.
package rabbittest
