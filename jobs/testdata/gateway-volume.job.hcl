job "nimbus-gateway" {
  region      = "global"
  namespace   = "default"
  type        = "service"
  datacenters = ["dc1", "dc2"]
  node_pool   = "edge"
  group "gateway" {
    count = 1
    task "gateway" {
      driver       = "exec"
      kill_timeout = "35s"
      kill_signal  = "SIGTERM"
      config {
        args    = ["gateway", "--config", "$${NOMAD_SECRETS_DIR}/gateway.hcl"]
        command = "local/nimbus"
      }
      resources {
        cpu    = 1000
        memory = 1024
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
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-gateway\" }}{{ .invoke_key }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
      template {
        destination = "secrets/gateway.hcl"
        data        = "# Rendered by Nomad from job nimbus-gateway and its Variable nomad/jobs/nimbus-gateway.\nlisten          = \"{{ env \"NOMAD_ADDR_http\" }}\"\ninvoke_key_file = \"{{ env \"NOMAD_SECRETS_DIR\" }}/invoke.key\"\nnomad {\n  address   = \"unix://{{ env \"NOMAD_SECRETS_DIR\" }}/api.sock\"\n  region    = \"global\"\n  namespace = \"default\"\n}\nconsul {\n  address = \"10.0.0.2:8500\"\n}\nqueue {\n  data_dir = \"/srv/nimbus/queue\"\n}\n{{ with nomadVar \"nomad/jobs/nimbus-gateway\" }}{{ .config }}{{ end }}\n"
        change_mode = "restart"
        perms       = "0400"
      }
      volume_mount {
        volume      = "nimbus-data"
        destination = "/srv/nimbus"
      }
      identity {
        env = true
      }
    }
    volume "nimbus-data" {
      type   = "host"
      source = "nimbus-gateway"
    }
    update {
      max_parallel     = 1
      health_check     = "task_states"
      min_healthy_time = "10s"
      healthy_deadline = "5m0s"
      auto_revert      = true
    }
    network {
      port "http" {
      }
    }
  }
  meta = {
    "nimbus.role" = "gateway"
  }
}
