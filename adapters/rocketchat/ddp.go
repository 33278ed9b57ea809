package rocketchat

import (
	"context"

	"github.com/gin-gonic/gin"
)

// ddpState is the DDP side's state. (Placeholder: DDP lands in ddp*.go.)
type ddpState struct{}

func (s *Surface) initDDP()                         {}
func (s *Surface) mountDDP(r gin.IRouter)           {}
func (s *Surface) runDDP(ctx context.Context) error { <-ctx.Done(); return nil }
