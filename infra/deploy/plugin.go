package deploy

import "github.com/mqttstack/mqttstack/infra/hostres"

// PluginName and PluginVersion name our provider plugin,
// pulumi-resource-mqttstack, exactly as the HostConfig resource requests it.
const (
	PluginName    = hostres.PluginName
	PluginVersion = hostres.PluginVersion
)
