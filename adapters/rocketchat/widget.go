package rocketchat

import "github.com/gin-gonic/gin"

// widgetState is the widget hosting state. (Placeholder: lands in
// widget*.go.)
type widgetState struct{}

func (s *Surface) initWidget()               {}
func (s *Surface) mountWidget(r gin.IRouter) {}
