package artifact

import (
	"mime"
	"path"
	"strings"
)

// textNames are the extensions (and the extension-less file names) that
// MLflow serves as text/plain so that its UI can show them. MLflow's own list
// (mlflow/utils/mime_type_utils.py) spells the project file "mlproject", the
// value of its MLPROJECT_FILE_NAME, and compares case-sensitively; "MLproject",
// the name MLflow projects actually use, is served as text too.
var textNames = map[string]bool{
	"txt": true, "log": true, "err": true, "cfg": true, "conf": true, "cnf": true,
	"cf": true, "ini": true, "properties": true, "prop": true, "hocon": true,
	"toml": true, "yaml": true, "yml": true, "xml": true, "json": true, "js": true,
	"py": true, "py3": true, "csv": true, "tsv": true, "md": true, "rst": true,
	"MLmodel": true, "mlproject": true, "MLproject": true,
}

// ContentType guesses the media type of an artifact from its name, as
// MLflow's server does for downloads: the text formats MLflow knows (and the
// files MLmodel, mlproject and MLproject) are text/plain, other names take the type
// registered for their extension, and anything unknown is
// application/octet-stream. The result carries no parameters (no charset).
func ContentType(name string) string {
	base := path.Base(name)
	ext := path.Ext(base)
	key := strings.TrimPrefix(ext, ".")
	if key == "" {
		key = base
	}
	if textNames[key] {
		return "text/plain"
	}
	if t := mime.TypeByExtension(ext); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	return "application/octet-stream"
}
