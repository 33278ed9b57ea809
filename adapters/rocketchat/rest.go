package rocketchat

import "github.com/gin-gonic/gin"

// restState is the REST side's state. (Placeholder: the REST routes land
// in rest*.go.)
type restState struct{}

func (s *Surface) initREST()               {}
func (s *Surface) mountREST(r gin.IRouter) {}
