# Every block and attribute the spec language has.

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "memory" {
  type    = number
  default = 512
}

locals {
  prefix = "orders"
  common_env = {
    LOG_LEVEL = "info"
    REGION    = upper(var.region)
  }
  full_name = "${local.prefix}-api"
}

layer "deps" {
  description         = "shared python dependencies"
  compatible_runtimes = ["python3.12", "python3.13"]
  code {
    zip = "layers/deps.zip"
  }
}

layer "tools" {
  code {
    url      = "https://artifacts.example.com/tools-1.2.zip"
    checksum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  }
}

function "orders-api" {
  description = "Order intake for ${local.full_name}"
  runtime     = "python3.12"
  handler     = "app.handler"
  layers      = ["deps", "tools:3"]

  memory_mb                 = var.memory
  timeout                   = "30s"
  ephemeral_storage_mb      = 1024
  environments_per_instance = 4
  network                   = "none"
  reserved_concurrency      = 50

  environment = merge(local.common_env, {
    TABLE  = "orders"
    CONFIG = trimspace(file("config.txt"))
  })

  tags = {
    team = "payments"
  }

  code {
    dir = "src"
  }

  # Client-side only: not in the canonical JSON.
  build {
    command = "make bundle"
    output  = "dist"
  }

  secret "DB_PASSWORD" {
    path = "nimbus/orders/db"
    key  = "password"
  }

  secret "API_TOKEN" {
    path = "nimbus/orders/api"
    key  = "token"
  }

  provisioned_concurrency {
    min                = 2
    max                = 20
    target_utilization = 0.6

    schedule "business-hours" {
      cron     = "0 8 * * 1-5"
      duration = "10h"
      timezone = "Europe/Berlin"
      min      = 10
    }
  }

  url {
    auth        = "AWS_IAM"
    invoke_mode = "RESPONSE_STREAM"
    qualifier   = "live"

    cors {
      allow_origins     = ["https://shop.example.com", "http://localhost:3000"]
      allow_methods     = ["GET", "POST"]
      allow_headers     = ["content-type", "x-request-id"]
      expose_headers    = ["x-request-id"]
      allow_credentials = true
      max_age           = 600
    }
  }

  async {
    max_retries   = 1
    max_event_age = 3600

    on_success {
      function = "audit"
    }
    on_failure {
      nats = "orders.failed"
    }
    dead_letter {
      webhook = "https://hooks.example.com/orders-dlq"
    }
  }

  event_source "incoming" {
    type                           = "nats"
    stream                         = "ORDERS"
    subject                        = "orders.created"
    batch_size                     = 25
    maximum_batching_window        = "2s"
    maximum_retry_attempts         = 5
    maximum_record_age             = "1h"
    bisect_batch_on_function_error = true
    report_batch_item_failures     = true
    filters = [
      { body = { kind = ["order"] } },
      jsonencode({ body = { priority = ["high"] } }),
    ]
    on_failure {
      kafka = "orders-dead"
    }
  }

  event_source "legacy" {
    type                   = "kafka"
    enabled                = false
    url                    = "kafka-1:9092,kafka-2:9092"
    topics                 = ["orders-v1"]
    group                  = "orders-legacy"
    parallelization_factor = 4
    starting_position      = "TRIM_HORIZON"
  }

  event_source "nightly" {
    type     = "schedule"
    schedule = "cron(0 3 * * ? *)"
    input    = { task = "reconcile" }
  }

  event_source "replay" {
    type                        = "redis"
    url                         = "redis://127.0.0.1:6379"
    stream                      = "orders:replay"
    maximum_concurrency         = 4
    parallelization_factor      = 10
    starting_position           = "AT_TIMESTAMP"
    starting_position_timestamp = "2026-11-30T00:00:00Z"
  }

  event_source "mq" {
    type                   = "rabbitmq"
    url                    = "amqp://127.0.0.1:5672/orders"
    queue                  = "orders.created"
    maximum_retry_attempts = 3
  }

  alias "live" {
    description = "production traffic"
    version     = 7
    routing {
      version = "8"
      weight  = 0.1
    }
  }

  alias "beta" {
    version = "$LATEST"
  }

  placement {
    region      = var.region
    datacenters = ["dc1", "dc2"]
    namespace   = "shop"
    node_pool   = "lambda"
    priority    = 70
    constraint {
      attribute = "$${attr.kernel.name}"
      value     = "linux"
    }
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }
  }
}

function "audit" {
  runtime = "provided.al2023"
  code {
    dir = "audit"
  }
  build {
    skip = true
  }
}
