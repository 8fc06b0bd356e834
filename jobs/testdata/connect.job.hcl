job "nimbus-orders" {
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
      kill_timeout = "10s"
      config {
        account_id           = "000000000000"
        code_sha256          = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        code_url             = "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip"
        connect_service      = "nimbus-orders"
        environments         = 2
        ephemeral_storage_mb = 512
        function             = "orders"
        initialization_type  = "provisioned-concurrency"
        invoke_port          = "invoke"
        memory_mb            = 256
        region               = "us-east-1"
        runtime              = "provided.al2023"
        timeout              = "5s"
        version              = "$LATEST"
      }
      resources {
        cpu    = 290
        memory = 576
      }
      meta = {
        "nimbus.function" = "orders"
        "nimbus.version"  = "$LATEST"
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
      size = 1274
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
      name     = "nimbus-orders"
      tags     = ["function=orders", "version=$LATEST", "group=provisioned"]
      port     = "invoke"
      task     = "function"
      provider = "consul"
      check {
        name            = "nimbus-health"
        type            = "http"
        path            = "/nimbus/v1/health"
        protocol        = "https"
        interval        = "5s"
        timeout         = "2s"
        tls_skip_verify = true
      }
      connect {
        native = true
      }
      meta {
        function = "orders"
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
      kill_timeout = "10s"
      config {
        account_id           = "000000000000"
        code_sha256          = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        code_url             = "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip"
        connect_service      = "nimbus-orders"
        environments         = 2
        ephemeral_storage_mb = 512
        function             = "orders"
        initialization_type  = "on-demand"
        invoke_port          = "invoke"
        memory_mb            = 256
        region               = "us-east-1"
        runtime              = "provided.al2023"
        timeout              = "5s"
        version              = "$LATEST"
      }
      resources {
        cpu    = 290
        memory = 576
      }
      meta = {
        "nimbus.function" = "orders"
        "nimbus.version"  = "$LATEST"
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
      size = 1274
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
      name     = "nimbus-orders"
      tags     = ["function=orders", "version=$LATEST", "group=ondemand"]
      port     = "invoke"
      task     = "function"
      provider = "consul"
      check {
        name            = "nimbus-health"
        type            = "http"
        path            = "/nimbus/v1/health"
        protocol        = "https"
        interval        = "5s"
        timeout         = "2s"
        tls_skip_verify = true
      }
      connect {
        native = true
      }
      meta {
        function = "orders"
        group    = "ondemand"
        version  = "$LATEST"
      }
    }
    scaling {
      min     = 0
      max     = 500
      enabled = false
    }
  }
  meta = {
    "nimbus.code_sha256" = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    "nimbus.function"    = "orders"
    "nimbus.spec"        = "{\"code\":{\"dir\":\"./build\"},\"environments_per_instance\":2,\"ephemeral_storage_mb\":512,\"memory_mb\":256,\"name\":\"orders\",\"runtime\":\"provided.al2023\",\"timeout\":\"5s\"}"
    "nimbus.version"     = "$LATEST"
  }
}
