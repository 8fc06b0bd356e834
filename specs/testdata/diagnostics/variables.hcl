variable "size" {
  type = number
}

variable "stage" {
  default = "dev"
  secret  = true
}

locals {
  a = local.b
  b = local.a
}

function "api" {
  runtime   = "provided.al2023"
  memory_mb = var.size
  timeout   = var.timeout
  code {
    dir = local.a
  }
}
