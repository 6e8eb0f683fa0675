package deploy

// PluginName and PluginVersion name our provider plugin,
// pulumi-resource-mqttstack, as the HostConfig resource requests it.
const (
	PluginName    = "mqttstack"
	PluginVersion = "0.1.0"
)
