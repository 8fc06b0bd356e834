package e2e

import (
	"os"
	"testing"

	"github.com/nimbus-fn/nimbus/internal/rabbittest"
)

// TestMain stops the shared rabbitmq-server node (booted only by the tests
// that need one) after the last test.
func TestMain(m *testing.M) {
	os.Exit(rabbittest.Main(m))
}
