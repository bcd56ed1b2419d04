"""The study's training script, written out: the code the `cpu` variant must reproduce exactly.

The PyTorch CIFAR-10 tutorial's procedure as the study ran it, with `torch.manual_seed(seed)`
at its top: torchvision's CIFAR10 data (each uint8 image a PIL image, then ToTensor and
Normalize((0.5,)*3, (0.5,)*3)), a shuffling DataLoader with 2 workers, the tutorial's LeNet,
SGD lr 0.001 momentum 0.9, and its loop (zero_grad, forward, loss, backward, step, the running
loss printed every 2000 batches). PyTorch's own thread count unless --threads is given. It
reads the workflow's prepared cache, so both train on the same images.

    python benchmarks/study_script.py --cache resources/cifar10-$MD5.npz --epochs 10

Prints one JSON line: training time (around the epoch loop, as the study timed it), accuracy
on the test set, each epoch's mean loss, and the thread count.
"""

import argparse
import json
import sys
import time

import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cifarbench.cache import load_cache

BATCH_SIZE, WORKERS, LR, MOMENTUM, PRINT_EVERY = 4, 2, 0.001, 0.9, 2000


class CifarImages(Dataset):
    """The prepared uint8 arrays served as torchvision's CIFAR10 serves them."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images.transpose(0, 2, 3, 1), labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


class Net(nn.Module):
    """The PyTorch tutorial's LeNet, as the study used it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache", required=True, help="the prepared cache (resources/cifar10-<md5>.npz)"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: PyTorch's)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_cache(args.cache)
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    trainset = CifarImages(data.train_images, data.train_labels, transform)
    trainloader = DataLoader(trainset, batch_size=BATCH_SIZE, shuffle=True, num_workers=WORKERS)
    testset = CifarImages(data.test_images, data.test_labels, transform)
    testloader = DataLoader(testset, batch_size=1000, shuffle=False, num_workers=WORKERS)

    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    start = time.perf_counter()
    epoch_losses = train(net, criterion, optimizer, trainloader, args.epochs)
    training_time = time.perf_counter() - start
    result = {
        "training_time_s": training_time,
        "accuracy_pct": 100.0 * correct(net, testloader) / len(testset),
        "epoch_losses": epoch_losses,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result), flush=True)


def train(net, criterion, optimizer, trainloader, epochs: int) -> list[float]:
    """The tutorial's loop; returns each epoch's mean loss."""
    epoch_losses = []
    for epoch in range(epochs):
        running_loss = epoch_loss = 0.0
        for i, (inputs, labels) in enumerate(trainloader):
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            epoch_loss += loss.item()
            if i % PRINT_EVERY == PRINT_EVERY - 1:
                print(
                    f"[{epoch + 1}, {i + 1:5d}] loss: {running_loss / PRINT_EVERY:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
                running_loss = 0.0
        epoch_losses.append(epoch_loss / len(trainloader))
    return epoch_losses


def correct(net: Net, testloader: DataLoader) -> int:
    with torch.no_grad():
        return sum((net(images).argmax(1) == labels).sum().item() for images, labels in testloader)


if __name__ == "__main__":
    main()
