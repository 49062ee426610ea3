# An index a tag already serves: <repository>:<tag>. Its platform manifests become
# the sources, pinned by digest.
terraform import stevedore_image_index.web 127.0.0.1:5000/web:v7
