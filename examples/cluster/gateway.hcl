# A gateway for a Nomad + Consul cluster: run it as `nimbus gateway --config
# gateway.hcl` (several copies behind Consul). Secrets come from files that
# a Nomad template renders from Nomad Variables, never from this file in a
# repository. gateway/config's tests load this file, so it stays valid.

listen     = "0.0.0.0:9000"
region     = "us-east-1"
account_id = "123456789012"
url_domain = "lambda-url.example.internal"

# The cluster key: instances' invoke secrets, the embedded NATS token and
# nothing else derive from it. `nimbus deploy` needs the same key
# (NIMBUS_SECRET_KEY or --secret-key-file) to write each job's Nomad
# Variable nomad/jobs/<job> that the job's template reads.
invoke_key_file = "secrets/invoke-key"

# SigV4 credentials callers sign with (the AWS CLI, aws-sdk-go-v2,
# `nimbus invoke`, `nimbus deploy --endpoint`).
access_key "AKIDNIMBUSADMIN" {
  secret = "change-me-to-a-long-random-secret"
}

# Where function instances are found: Consul health ("consul") or Nomad's
# native service registrations ("nomad").
discovery = "consul"

nomad {
  # NOMAD_ADDR / NOMAD_TOKEN from the environment when unset. The token
  # needs: read jobs and scale the on-demand groups of nimbus-* jobs, read
  # variables under nimbus/ and nomad/jobs/, write nimbus/mappings/.
  address   = "http://127.0.0.1:4646"
  namespace = "default"
}

consul {
  # CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN_FILE / CONSUL_HTTP_TOKEN from the
  # environment when unset. With Consul ACLs on, the token needs the policy
  # in docs/gateway-on-nomad.md ("Consul ACLs"); token_file is read at start.
  # token_file   = "secrets/consul.token"
  address        = "127.0.0.1:8500"
  check_interval = "5s"
}

# With nats_url, reserved concurrency holds across all gateways: each
# invocation of a function with a reservation holds a slot in the NATS KV
# bucket nimbus_concurrency. A gateway that dies frees its slots this long
# after its last renewal. Default "30s".
concurrency_lease = "30s"
# The unreserved pool (account_concurrency less the reservations) can be
# shared the same way, at a KV write per invocation; off by default, when
# each gateway admits the whole pool.
# share_account_concurrency = true

queue {
  # Several gateways share one NATS JetStream cluster for the async queue,
  # the artifact store, schedules, NATS event sources and reserved
  # concurrency. Without nats_url each gateway embeds its own (one gateway
  # only).
  nats_url        = "tls://nats.service.consul:4222"
  nats_creds_file = "secrets/nats.creds"
  nats_ca_file    = "secrets/nats-ca.pem"
  replicas        = 3
}

artifacts {
  replicas = 3
}

# Kafka destinations (async on_success/on_failure, event-source on_failure).
kafka_brokers = "kafka-1.service.consul:9092,kafka-2.service.consul:9092"
