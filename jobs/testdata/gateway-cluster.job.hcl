job "lambda-gateway" {
  region      = "eu"
  namespace   = "functions"
  type        = "service"
  datacenters = ["*"]
  group "gateway" {
    count = 3
    constraint {
      value    = "true"
      operator = "distinct_hosts"
    }
    task "gateway" {
      driver       = "exec"
      kill_timeout = "1m0s"
      kill_signal  = "SIGTERM"
      config {
        args    = ["gateway", "--config", "$${NOMAD_SECRETS_DIR}/gateway.hcl"]
        command = "local/nimbus"
      }
      resources {
        cpu    = 500
        memory = 512
      }
      artifact {
        source      = "https://releases.example.com/nimbus/1.0.0/nimbus_linux_amd64"
        mode        = "file"
        destination = "local/nimbus"
        options {
          checksum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        }
      }
      template {
        destination = "secrets/invoke.key"
        data        = "{{ with nomadVar \"nomad/jobs/lambda-gateway\" }}{{ .invoke_key }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
      template {
        destination = "secrets/gateway.hcl"
        data        = "# Rendered by Nomad from job lambda-gateway and its Variable nomad/jobs/lambda-gateway.\nlisten          = \"{{ env \"NOMAD_ADDR_http\" }}\"\ninvoke_key_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/invoke.key\"\nnomad {\n  address   = \"unix://{{ env \"NOMAD_SECRETS_DIR\" }}/api.sock\"\n  region    = \"eu\"\n  namespace = \"functions\"\n}\nconsul {\n  address = \"127.0.0.1:8500\"\n  token_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/consul.token\"\n}\nconnect {\n  enabled = true\n  listen  = \"{{ env \"NOMAD_ADDR_mesh\" }}\"\n}\nqueue {\n  nats_url = \"tls://nats.service.consul:4222\"\n  nats_nkey_seed_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/nats.nk\"\n}\n{{ with nomadVar \"nomad/jobs/lambda-gateway\" }}{{ .config }}{{ end }}\n"
        change_mode = "restart"
        perms       = "0400"
      }
      template {
        destination = "secrets/nats.nk"
        data        = "{{ with nomadVar \"nomad/jobs/lambda-gateway\" }}{{ .nats_nkey_seed }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
      template {
        destination = "secrets/consul.token"
        data        = "{{ with nomadVar \"nomad/jobs/lambda-gateway\" }}{{ .consul_token }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
      identity {
        env = true
      }
    }
    update {
      max_parallel     = 1
      health_check     = "task_states"
      min_healthy_time = "10s"
      healthy_deadline = "5m0s"
      auto_revert      = true
    }
    network {
      reserved_ports "http" {
        static = 9000
      }
      reserved_ports "mesh" {
        static = 9443
      }
    }
  }
  meta = {
    "nimbus.role" = "gateway"
  }
}
