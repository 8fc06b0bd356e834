# A stream-driven function: every entry added to the Redis stream "orders"
# reaches the handler in batches, in order. Entries whose data is not an
# order are filtered out before the function runs; an order the handler
# cannot process is reported in batchItemFailures, retried twice, and then
# its coordinates go to the NATS subject orders.failed.
locals {
  # REDIS_URL in the environment of nimbus dev / deploy, else a local Redis.
  redis_url = env("REDIS_URL") != "" ? env("REDIS_URL") : "redis://127.0.0.1:6379"
}

function "orders" {
  description = "Counts orders from a Redis stream"
  runtime     = "python3.12"
  handler     = "app.handler"
  timeout     = 10

  code {
    dir = "."
  }

  event_source "orders" {
    type                       = "redis"
    url                        = local.redis_url
    stream                     = "orders"
    starting_position          = "TRIM_HORIZON"
    batch_size                 = 10
    maximum_batching_window    = "1s"
    maximum_retry_attempts     = 2
    report_batch_item_failures = true
    filters                    = [{ data = { kind = ["order"] } }]
    on_failure {
      nats = "orders.failed"
    }
  }

  # Once an hour, the same function gets EventBridge's scheduled event.
  event_source "hourly" {
    type     = "schedule"
    schedule = "rate(1 hour)"
  }
}
