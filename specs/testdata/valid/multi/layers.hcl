variable "stage" {
  default = "dev"
}

locals {
  stage = coalesce(env("STAGE"), var.stage)
}

layer "sharp" {
  compatible_runtimes = ["nodejs20.x", "nodejs22.x"]
  code {
    zip = "layers/sharp.zip"
  }
}
