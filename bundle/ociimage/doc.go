// Package ociimage builds a function's OCI image without a Docker daemon
// (nimbus build --image): a base image plus one code layer holding the
// function's built code directory at /var/task, with ENTRYPOINT, CMD and
// WORKDIR set by Lambda's conventions.
//
//   - provided runtimes: the base defaults to an empty image (scratch), the
//     entrypoint is /var/task/bootstrap (an aws-lambda-go binary is its own
//     runtime interface client), the working directory /var/task.
//   - python and node: the base is required. It must carry the interpreter
//     and a runtime interface client, as Lambda's base images do
//     (public.ecr.aws/lambda/python:3.12 and the like, whose
//     /lambda-entrypoint.sh runs the handler named by CMD); the image keeps
//     the base's ENTRYPOINT and gets CMD [handler]. Nimbus does not copy
//     the host's interpreter into an image: an interpreter needs its
//     shared libraries and standard library at the paths it was built
//     for, and an image that works on one host and not on the next is
//     worse than a clear requirement.
//
// The code layer is reproducible: entries sorted, timestamps zero, owner
// 0:0, modes 0644/0755 (as bundle.Zip normalises them), so the same code
// on the same base gives the same digest. Symlinks and special files in
// the code directory are refused, as bundle.Zip refuses them.
//
// It is a leaf: it imports the standard library and go-containerregistry.
package ociimage
