rule download:
    output:
        archive="resources/cifar-10-python.tar.gz",
    log:
        "logs/download.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        url=config["data"]["url"],
        md5=config["data"]["md5"],
    script:
        "../scripts/download.py"


rule prepare:
    input:
        archive=rules.download.output.archive,
    output:
        cache="resources/cifar10.npz",
    log:
        "logs/prepare.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        train_size=config["data"]["train_size"],
        test_size=config["data"]["test_size"],
    script:
        "../scripts/prepare.py"
