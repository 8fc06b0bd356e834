function "api" {
  runtime              = "provided.al2023"
  reserved_concurrency = 5
  code {
    dir = "."
  }
  provisioned_concurrency {
    min                = 8
    max                = 6
    target_utilization = 1.2
    schedule "morning" {
      cron     = "0 8 * *"
      timezone = "Mars/Olympus"
      min      = 9
    }
  }
}
