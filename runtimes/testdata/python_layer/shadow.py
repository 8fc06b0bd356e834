def which(event, context):
    return "layer"
