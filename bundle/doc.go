// Package bundle packages function and layer code as deterministic zip
// archives and unpacks them safely.
//
// Zip gives the same bytes (and so the same sha256, the bundle's content
// address) for the same files whatever their timestamps, owners or umask:
// entries are sorted, timestamps fixed and modes normalised to 0644/0755.
// Extract refuses archives that would write outside the destination
// (absolute or `..` paths, symlinks) or unpack beyond a size limit.
//
// It is a leaf: it imports only the standard library.
package bundle
