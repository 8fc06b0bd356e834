job "nimbus-legacy_batch_job" {
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
      kill_timeout = "5m0s"
      config {
        account_id           = "000000000000"
        code_sha256          = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        code_url             = "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip"
        environments         = 2
        ephemeral_storage_mb = 512
        function             = "legacy_batch_job"
        handler              = "index.handler"
        initialization_type  = "provisioned-concurrency"
        invoke_port          = "invoke"
        invoke_secret_file   = "secrets/nimbus-invoke-secret"
        memory_mb            = 3008
        region               = "us-east-1"
        runtime              = "nodejs22.x"
        timeout              = "15m0s"
        version              = "$LATEST"
      }
      resources {
        cpu    = 3401
        memory = 6080
      }
      meta = {
        "nimbus.function" = "legacy_batch_job"
        "nimbus.version"  = "$LATEST"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-legacy_batch_job\" }}{{ .invoke_secret }}{{ end }}"
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
      name     = "nimbus-legacy-batch-job-a8ec78c6"
      tags     = ["function=legacy_batch_job", "version=$LATEST", "group=provisioned"]
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
        function = "legacy_batch_job"
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
      kill_timeout = "5m0s"
      config {
        account_id           = "000000000000"
        code_sha256          = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        code_url             = "https://artifacts.nimbus.test/v1/bundles/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.zip"
        environments         = 2
        ephemeral_storage_mb = 512
        function             = "legacy_batch_job"
        handler              = "index.handler"
        initialization_type  = "on-demand"
        invoke_port          = "invoke"
        invoke_secret_file   = "secrets/nimbus-invoke-secret"
        memory_mb            = 3008
        region               = "us-east-1"
        runtime              = "nodejs22.x"
        timeout              = "15m0s"
        version              = "$LATEST"
      }
      resources {
        cpu    = 3401
        memory = 6080
      }
      meta = {
        "nimbus.function" = "legacy_batch_job"
        "nimbus.version"  = "$LATEST"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-legacy_batch_job\" }}{{ .invoke_secret }}{{ end }}"
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
      name     = "nimbus-legacy-batch-job-a8ec78c6"
      tags     = ["function=legacy_batch_job", "version=$LATEST", "group=ondemand"]
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
        function = "legacy_batch_job"
        group    = "ondemand"
        version  = "$LATEST"
      }
    }
    scaling {
      min     = 0
      max     = 0
      enabled = false
    }
  }
  meta = {
    "nimbus.code_sha256" = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    "nimbus.function"    = "legacy_batch_job"
    "nimbus.spec"        = "{\"code\":{\"zip\":\"dist/fn.zip\"},\"environments_per_instance\":2,\"ephemeral_storage_mb\":512,\"handler\":\"index.handler\",\"memory_mb\":3008,\"name\":\"legacy_batch_job\",\"reserved_concurrency\":0,\"runtime\":\"nodejs22.x\",\"timeout\":\"15m0s\"}"
    "nimbus.version"     = "$LATEST"
  }
}
