job "nimbus-resize" {
  region      = "global"
  namespace   = "default"
  type        = "service"
  priority    = 50
  datacenters = ["*"]
  group "provisioned" {
    count          = 0
    shutdown_delay = "5s"
    task "function" {
      driver       = "nimbus"
      kill_timeout = "35s"
      config {
        account_id              = "000000000000"
        environments            = 1
        ephemeral_storage_mb    = 512
        function                = "resize"
        image                   = "registry.example:5000/team/resize@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        image_command           = ["app.handler"]
        image_entrypoint        = ["/lambda-entrypoint.sh"]
        image_working_directory = "/var/task"
        initialization_type     = "provisioned-concurrency"
        invoke_port             = "invoke"
        invoke_secret_file      = "secrets/nimbus-invoke-secret"
        memory_mb               = 512
        region                  = "us-east-1"
        timeout                 = "30s"
        version                 = "$LATEST"
      }
      resources {
        cpu    = 290
        memory = 576
      }
      meta = {
        "nimbus.function" = "resize"
        "nimbus.version"  = "$LATEST"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-resize\" }}{{ .invoke_secret }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
    }
    restart {
      interval = "1m0s"
      attempts = 3
      delay    = "2s"
      mode     = "fail"
    }
    reschedule {
      delay          = "5s"
      delay_function = "exponential"
      max_delay      = "2m0s"
      unlimited      = true
    }
    ephemeral_disk {
      size = 762
    }
    update {
      max_parallel = 0
    }
    network {
      mode = "host"
      port "invoke" {
      }
    }
    service {
      name     = "nimbus-resize"
      tags     = ["function=resize", "version=$LATEST", "group=provisioned"]
      port     = "invoke"
      provider = "consul"
      check {
        name     = "nimbus-health"
        type     = "http"
        path     = "/nimbus/v1/health"
        interval = "5s"
        timeout  = "2s"
      }
      meta {
        function = "resize"
        group    = "provisioned"
        version  = "$LATEST"
      }
    }
    scaling {
      min     = 0
      max     = 0
      enabled = false
    }
  }
  group "ondemand" {
    count          = 0
    shutdown_delay = "5s"
    task "function" {
      driver       = "nimbus"
      kill_timeout = "35s"
      config {
        account_id              = "000000000000"
        environments            = 1
        ephemeral_storage_mb    = 512
        function                = "resize"
        image                   = "registry.example:5000/team/resize@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        image_command           = ["app.handler"]
        image_entrypoint        = ["/lambda-entrypoint.sh"]
        image_working_directory = "/var/task"
        initialization_type     = "on-demand"
        invoke_port             = "invoke"
        invoke_secret_file      = "secrets/nimbus-invoke-secret"
        memory_mb               = 512
        region                  = "us-east-1"
        timeout                 = "30s"
        version                 = "$LATEST"
      }
      resources {
        cpu    = 290
        memory = 576
      }
      meta = {
        "nimbus.function" = "resize"
        "nimbus.version"  = "$LATEST"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-resize\" }}{{ .invoke_secret }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
    }
    restart {
      interval = "1m0s"
      attempts = 3
      delay    = "2s"
      mode     = "fail"
    }
    reschedule {
      delay          = "5s"
      delay_function = "exponential"
      max_delay      = "2m0s"
      unlimited      = true
    }
    ephemeral_disk {
      size = 762
    }
    update {
      max_parallel = 0
    }
    network {
      mode = "host"
      port "invoke" {
      }
    }
    service {
      name     = "nimbus-resize"
      tags     = ["function=resize", "version=$LATEST", "group=ondemand"]
      port     = "invoke"
      provider = "consul"
      check {
        name     = "nimbus-health"
        type     = "http"
        path     = "/nimbus/v1/health"
        interval = "5s"
        timeout  = "2s"
      }
      meta {
        function = "resize"
        group    = "ondemand"
        version  = "$LATEST"
      }
    }
    scaling {
      min     = 0
      max     = 1000
      enabled = false
    }
  }
  meta = {
    "nimbus.code_sha256" = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    "nimbus.function"    = "resize"
    "nimbus.spec"        = "{\"code\":{\"image\":\"registry.example:5000/team/resize:v1\",\"resolved_image\":\"registry.example:5000/team/resize@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},\"environments_per_instance\":1,\"ephemeral_storage_mb\":512,\"image_config\":{\"command\":[\"app.handler\"],\"entrypoint\":[\"/lambda-entrypoint.sh\"],\"working_directory\":\"/var/task\"},\"memory_mb\":512,\"name\":\"resize\",\"timeout\":\"30s\"}"
    "nimbus.version"     = "$LATEST"
  }
}
