package bolt

import "testing"

func BenchmarkTmpNoSync(b *testing.B) { benchCommitOpts(b, 128, Options{NoSync: true}) }
