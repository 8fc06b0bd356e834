function "worker" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  event_source "orders" {
    type       = "kafka"
    url        = "kafka:9092"
    batch_size = 20000
  }
  event_source "tick" {
    type       = "schedule"
    schedule   = "cron(0 61 * * *)"
    batch_size = 5
  }
  event_source "every" {
    type     = "schedule"
    schedule = "rate(5 weeks)"
  }
  event_source "jobs" {
    type                    = "sqs"
    stream                  = "JOBS"
  }
  event_source "redis" {
    type                    = "redis"
    url                     = "redis://localhost:6379"
    stream                  = "jobs"
    starting_position       = "AT_TIMESTAMP"
    maximum_batching_window = "10m"
    maximum_retry_attempts  = -2
    maximum_record_age      = "30s"
    maximum_concurrency     = 1
    parallelization_factor  = 11
    filters                 = ["not json", { body = { size = { numeric = [">"] } } }, jsonencode({ body = { kind = "order" } })]
  }
  event_source "mq" {
    type              = "rabbitmq"
    url               = "http://broker:5672"
    starting_position = "LATEST"
  }
  event_source "when" {
    type                        = "kafka"
    url                         = "kafka:9092"
    topics                      = ["t"]
    starting_position           = "AT_TIMESTAMP"
    starting_position_timestamp = "yesterday"
  }
  event_source "lanes" {
    type                   = "nats"
    stream                 = "ORDERS"
    parallelization_factor = 2
  }
  event_source "rabbit-lanes" {
    type                   = "rabbitmq"
    url                    = "amqp://broker:5672"
    queue                  = "jobs"
    parallelization_factor = 3
  }
}
