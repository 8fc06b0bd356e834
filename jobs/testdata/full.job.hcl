job "nimbus-orders-3" {
  region      = "eu"
  namespace   = "payments"
  type        = "service"
  priority    = 70
  datacenters = ["eu-west-1a", "eu-west-1b"]
  node_pool   = "functions"
  constraint {
    attribute = "$${attr.kernel.name}"
    value     = "linux"
    operator  = "="
  }
  constraint {
    attribute = "$${node.class}"
    value     = "fn"
  }
  constraint {
    attribute = "$${attr.driver.nimbus.isolation}"
    value     = "full"
    operator  = "="
  }
  group "provisioned" {
    count          = 2
    shutdown_delay = "5s"
    task "function" {
      driver       = "nimbus"
      kill_timeout = "35s"
      config {
        account_id           = "123456789012"
        code_sha256          = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        code_url             = "https://artifacts.example.com/orders-3.zip"
        environments         = 4
        ephemeral_storage_mb = 1024
        function             = "orders"
        handler              = "app.handler"
        initialization_type  = "provisioned-concurrency"
        invoke_port          = "invoke"
        invoke_secret_file   = "secrets/nimbus-invoke-secret"
        layer_sha256s        = ["2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"]
        layer_urls           = ["https://artifacts.example.com/layers/pydeps-4.zip", "https://artifacts.example.com/layers/otel-1.zip"]
        memory_mb            = 1769
        network              = "none"
        region               = "eu-central-1"
        run_as               = "nobody"
        runtime              = "python3.12"
        timeout              = "30s"
        version              = "3"
      }
      env = {
        "APP.MODE"  = "prod"
        "LOG_LEVEL" = "debug"
        "TABLE"     = "orders-$${env}"
      }
      resources {
        cpu    = 4000
        memory = 7140
      }
      meta = {
        "nimbus.function" = "orders"
        "nimbus.version"  = "3"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-orders-3\" }}{{ .invoke_secret }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
      template {
        destination = "secrets/nimbus.env"
        data        = "{{ with nomadVar \"nimbus/orders/api\" }}\nAPI_TOKEN={{ index . \"token\" | toJSON }}\n{{ end }}\n{{ with nomadVar \"nimbus/orders/db\" }}\nDB_PASSWORD={{ index . \"password\" | toJSON }}\nDB_USER={{ index . \"user\" | toJSON }}\n{{ end }}\n"
        change_mode = "restart"
        perms       = "0400"
        env         = true
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
      size = 4346
    }
    update {
      max_parallel      = 1
      health_check      = "checks"
      min_healthy_time  = "5s"
      healthy_deadline  = "2m0s"
      progress_deadline = "5m0s"
      auto_revert       = true
    }
    network {
      mode = "host"
      port "invoke" {
      }
    }
    service {
      name     = "nimbus-orders"
      tags     = ["function=orders", "version=3", "group=provisioned"]
      port     = "invoke"
      provider = "nomad"
      check {
        name     = "nimbus-health"
        type     = "http"
        path     = "/nimbus/v1/health"
        interval = "5s"
        timeout  = "2s"
      }
      meta {
        function = "orders"
        group    = "provisioned"
        version  = "3"
      }
    }
    scaling {
      min     = 2
      max     = 5
      enabled = true
      policy {
        cooldown            = "1m"
        evaluation_interval = "10s"
        check "utilization" {
          query  = "orders/3"
          source = "nimbus-apm"
          strategy "nimbus-target" {
            max       = 5
            min       = 2
            schedules = "[{\"name\":\"business-hours\",\"cron\":\"0 8 * * 1-5\",\"duration\":\"10h0m0s\",\"timezone\":\"Europe/Berlin\",\"min\":3}]"
            target    = 0.6
          }
        }
      }
    }
  }
  group "ondemand" {
    count          = 0
    shutdown_delay = "5s"
    task "function" {
      driver       = "nimbus"
      kill_timeout = "35s"
      config {
        account_id           = "123456789012"
        code_sha256          = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        code_url             = "https://artifacts.example.com/orders-3.zip"
        environments         = 4
        ephemeral_storage_mb = 1024
        function             = "orders"
        handler              = "app.handler"
        initialization_type  = "on-demand"
        invoke_port          = "invoke"
        invoke_secret_file   = "secrets/nimbus-invoke-secret"
        layer_sha256s        = ["2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"]
        layer_urls           = ["https://artifacts.example.com/layers/pydeps-4.zip", "https://artifacts.example.com/layers/otel-1.zip"]
        memory_mb            = 1769
        network              = "none"
        region               = "eu-central-1"
        run_as               = "nobody"
        runtime              = "python3.12"
        timeout              = "30s"
        version              = "3"
      }
      env = {
        "APP.MODE"  = "prod"
        "LOG_LEVEL" = "debug"
        "TABLE"     = "orders-$${env}"
      }
      resources {
        cpu    = 4000
        memory = 7140
      }
      meta = {
        "nimbus.function" = "orders"
        "nimbus.version"  = "3"
      }
      template {
        destination = "secrets/nimbus-invoke-secret"
        data        = "{{ with nomadVar \"nomad/jobs/nimbus-orders-3\" }}{{ .invoke_secret }}{{ end }}"
        change_mode = "restart"
        perms       = "0400"
      }
      template {
        destination = "secrets/nimbus.env"
        data        = "{{ with nomadVar \"nimbus/orders/api\" }}\nAPI_TOKEN={{ index . \"token\" | toJSON }}\n{{ end }}\n{{ with nomadVar \"nimbus/orders/db\" }}\nDB_PASSWORD={{ index . \"password\" | toJSON }}\nDB_USER={{ index . \"user\" | toJSON }}\n{{ end }}\n"
        change_mode = "restart"
        perms       = "0400"
        env         = true
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
      size = 4346
    }
    update {
      max_parallel      = 1
      health_check      = "checks"
      min_healthy_time  = "5s"
      healthy_deadline  = "2m0s"
      progress_deadline = "5m0s"
      auto_revert       = true
    }
    network {
      mode = "host"
      port "invoke" {
      }
    }
    service {
      name     = "nimbus-orders"
      tags     = ["function=orders", "version=3", "group=ondemand"]
      port     = "invoke"
      provider = "nomad"
      check {
        name     = "nimbus-health"
        type     = "http"
        path     = "/nimbus/v1/health"
        interval = "5s"
        timeout  = "2s"
      }
      meta {
        function = "orders"
        group    = "ondemand"
        version  = "3"
      }
    }
    scaling {
      min     = 0
      max     = 10
      enabled = false
    }
  }
  meta = {
    "nimbus.code_sha256" = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    "nimbus.function"    = "orders"
    "nimbus.spec"        = "{\"code\":{\"checksum\":\"sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\",\"url\":\"https://artifacts.example.com/orders-3.zip\"},\"description\":\"order intake\",\"environment\":{\"APP.MODE\":\"prod\",\"LOG_LEVEL\":\"debug\",\"TABLE\":\"orders-$${env}\"},\"environments_per_instance\":4,\"ephemeral_storage_mb\":1024,\"handler\":\"app.handler\",\"layers\":[\"pydeps:4\",\"otel\"],\"memory_mb\":1769,\"name\":\"orders\",\"network\":\"none\",\"placement\":{\"constraints\":[{\"attribute\":\"$${attr.kernel.name}\",\"operator\":\"=\",\"value\":\"linux\"},{\"attribute\":\"$${node.class}\",\"value\":\"fn\"}],\"datacenters\":[\"eu-west-1a\",\"eu-west-1b\"],\"namespace\":\"payments\",\"node_pool\":\"functions\",\"priority\":70,\"region\":\"eu\"},\"provisioned_concurrency\":{\"max\":20,\"min\":5,\"schedules\":[{\"cron\":\"0 8 * * 1-5\",\"duration\":\"10h0m0s\",\"min\":10,\"name\":\"business-hours\",\"timezone\":\"Europe/Berlin\"}],\"target_utilization\":0.6},\"reserved_concurrency\":40,\"runtime\":\"python3.12\",\"secrets\":[{\"env\":\"DB_PASSWORD\",\"key\":\"password\",\"path\":\"nimbus/orders/db\"},{\"env\":\"API_TOKEN\",\"key\":\"token\",\"path\":\"nimbus/orders/api\"},{\"env\":\"DB_USER\",\"key\":\"user\",\"path\":\"nimbus/orders/db\"}],\"tags\":{\"team\":\"payments\"},\"timeout\":\"30s\"}"
    "nimbus.version"     = "3"
  }
}
