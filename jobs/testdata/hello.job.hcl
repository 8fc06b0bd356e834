job "nimbus-hello" {
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
      kill_timeout = "8s"
      config {
        account_id           = "000000000000"
        code_sha256          = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        code_url             = "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip"
        environments         = 1
        ephemeral_storage_mb = 512
        function             = "hello"
        initialization_type  = "provisioned-concurrency"
        invoke_port          = "invoke"
        invoke_secret_file   = "secrets/nimbus-invoke-secret"
        memory_mb            = 128
        region               = "us-east-1"
        runtime              = "provided.al2023"
        timeout              = "3s"
        version              = "$LATEST"
      }
      resources {
        cpu    = 100
        memory = 192
      }
      meta = {
        "nimbus.function" = "hello"
        "nimbus.version"  = "$LATEST"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-hello\" }}{{ .invoke_secret }}{{ end }}"
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
      name     = "nimbus-hello"
      tags     = ["function=hello", "version=$LATEST", "group=provisioned"]
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
        function = "hello"
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
      kill_timeout = "8s"
      config {
        account_id           = "000000000000"
        code_sha256          = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        code_url             = "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip"
        environments         = 1
        ephemeral_storage_mb = 512
        function             = "hello"
        initialization_type  = "on-demand"
        invoke_port          = "invoke"
        invoke_secret_file   = "secrets/nimbus-invoke-secret"
        memory_mb            = 128
        region               = "us-east-1"
        runtime              = "provided.al2023"
        timeout              = "3s"
        version              = "$LATEST"
      }
      resources {
        cpu    = 100
        memory = 192
      }
      meta = {
        "nimbus.function" = "hello"
        "nimbus.version"  = "$LATEST"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-hello\" }}{{ .invoke_secret }}{{ end }}"
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
      name     = "nimbus-hello"
      tags     = ["function=hello", "version=$LATEST", "group=ondemand"]
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
        function = "hello"
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
    "nimbus.code_sha256" = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    "nimbus.function"    = "hello"
    "nimbus.spec"        = "{\"code\":{\"dir\":\"./build\"},\"environments_per_instance\":1,\"ephemeral_storage_mb\":512,\"memory_mb\":128,\"name\":\"hello\",\"runtime\":\"provided.al2023\",\"timeout\":\"3s\"}"
    "nimbus.version"     = "$LATEST"
  }
}
