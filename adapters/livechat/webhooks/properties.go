package webhooks

import (
	"context"
	"encoding/json"
	"errors"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// alreadyExists is §2.9's already_exists (register_property of a declared
// property); answered 422.
const alreadyExists = wire.AlreadyExists

// Property configuration actions (Configuration API, "Properties"). A
// property's namespace is its owner_client_id, as in LiveChat (an
// application's properties live in the namespace named after its client
// id); properties declared in the configuration file show in
// list_properties too but cannot be registered again or unregistered.
//
//	register_property   {name, owner_client_id, type, access, description?,
//	                     domain?, range?{from,to}} → {}
//	unregister_property {name, owner_client_id}    → {}
//	list_properties     {owner_client_id}          → {"<name>": {type,
//	                     description?, access, domain?, range?}}
//
// access is {"<chat|thread|event>": {"agent": ["read","write"],
// "customer": ["read"]}}; a location left out cannot hold the property.

type propertyRequest struct {
	Name          string                                `json:"name"`
	OwnerClientID string                                `json:"owner_client_id"`
	Type          desk.PropType                         `json:"type"`
	Description   string                                `json:"description"`
	Access        map[desk.PropLocation]desk.RoleAccess `json:"access"`
	Domain        []json.RawMessage                     `json:"domain"`
	Range         *desk.PropRange                       `json:"range"`
	// default_value is accepted and ignored.
}

// PropertyView is one entry of list_properties.
type PropertyView struct {
	Type        desk.PropType                         `json:"type"`
	Description string                                `json:"description,omitempty"`
	Access      map[desk.PropLocation]desk.RoleAccess `json:"access"`
	Domain      []json.RawMessage                     `json:"domain,omitempty"`
	Range       *desk.PropRange                       `json:"range,omitempty"`
}

func (s *Service) properties() (*desk.Properties, error) {
	if s.cfg.Properties == nil {
		return nil, wire.Errorf(wire.Validation, "Properties are not configured on this gateway")
	}
	return s.cfg.Properties, nil
}

// propErr turns registry errors into Configuration API errors.
func propErr(err error) error {
	switch {
	case errors.Is(err, desk.ErrPropExists):
		return wire.Errorf(alreadyExists, "Property already exists")
	case errors.Is(err, desk.ErrPropDropping):
		return wire.Errorf(wire.Validation, "The values of this property's previous registration are still being deleted; try again shortly")
	case errors.Is(err, desk.ErrNotFound):
		return wire.Errorf(wire.NotFound, "Property not found")
	case errors.Is(err, desk.ErrForbidden):
		return wire.Errorf(wire.Authorization, "Property is set in the gateway's configuration file")
	}
	return err
}

func (s *Service) registerProperty(ctx context.Context, agent model.AgentID, body []byte) (any, error) {
	reg, err := s.properties()
	if err != nil {
		return nil, err
	}
	var req propertyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Name == "":
		return nil, invalid("name is required")
	case req.OwnerClientID == "" || len(req.OwnerClientID) > maxClientID:
		return nil, invalid("owner_client_id is required (at most %d characters)", maxClientID)
	case req.Type == "":
		return nil, invalid("type is required")
	case len(req.Description) > maxDescription:
		return nil, invalid("description is longer than %d characters", maxDescription)
	}
	def := desk.PropDef{Namespace: req.OwnerClientID, Name: req.Name, Type: req.Type, Description: req.Description,
		Access: req.Access, Domain: req.Domain, Range: req.Range}
	if err := reg.Register(ctx, def); err != nil {
		return nil, propErr(err)
	}
	s.log.Info().Str("namespace", def.Namespace).Str("property", def.Name).Str("agent", string(agent)).Msg("property registered")
	return struct{}{}, nil
}

func (s *Service) unregisterProperty(ctx context.Context, agent model.AgentID, body []byte) (any, error) {
	reg, err := s.properties()
	if err != nil {
		return nil, err
	}
	var req struct {
		Name          string `json:"name"`
		OwnerClientID string `json:"owner_client_id"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.Name == "" || req.OwnerClientID == "" {
		return nil, invalid("name and owner_client_id are required")
	}
	if err := reg.Unregister(ctx, req.OwnerClientID, req.Name); err != nil {
		return nil, propErr(err)
	}
	s.log.Info().Str("namespace", req.OwnerClientID).Str("property", req.Name).Str("agent", string(agent)).Msg("property unregistered")
	return struct{}{}, nil
}

func (s *Service) listProperties(_ context.Context, _ model.AgentID, body []byte) (any, error) {
	reg, err := s.properties()
	if err != nil {
		return nil, err
	}
	var req struct {
		OwnerClientID string `json:"owner_client_id"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.OwnerClientID == "" {
		return nil, invalid("owner_client_id is required")
	}
	out := map[string]PropertyView{}
	for _, d := range reg.List(req.OwnerClientID) {
		out[d.Name] = PropertyView{Type: d.Type, Description: d.Description, Access: d.Access, Domain: d.Domain, Range: d.Range}
	}
	return out, nil
}
