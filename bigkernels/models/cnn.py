"""Image classifiers: SimpleCNN and ResNet-18/34/50 (torchvision's layout and
parameter names: conv1, bn1, layer1..4, fc), for swap()'s conv chains."""
from torch import nn

from ._common import finish, positive_int


def _cbr(cin, cout, k=3, stride=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SimpleCNN(nn.Module):
    """conv-bn-relu x2, pool, conv-bn-relu, pool, linear: the classic small
    image classifier (about 60k parameters at width 32, enough for 8x8 digits)."""

    def __init__(self, num_classes=10, in_channels=1, width=32, *, kernels=True):
        super().__init__()
        positive_int("num_classes", num_classes), positive_int("in_channels", in_channels)
        positive_int("width", width)
        self.features = nn.Sequential(*_cbr(in_channels, width), *_cbr(width, width), nn.MaxPool2d(2),
                                      *_cbr(width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(2 * width, num_classes))
        finish(self, kernels)

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, in_channels=3, small_input=False, width=64):
        super().__init__()
        positive_int("num_classes", num_classes), positive_int("in_channels", in_channels)
        positive_int("width", width)
        if not isinstance(small_input, bool):
            raise TypeError(f"small_input must be a bool, got {type(small_input).__name__}")
        self.inplanes = width
        # 32x32 inputs (CIFAR-style): a 3x3 stride-1 stem and no max-pool, so
        # layer4 still sees 4x4 instead of 1x1.
        self.conv1 = nn.Conv2d(in_channels, width, 3 if small_input else 7, 1 if small_input else 2,
                               1 if small_input else 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(block, width, layers[0], 1)
        self.layer2 = self._layer(block, width * 2, layers[1], 2)
        self.layer3 = self._layer(block, width * 4, layers[2], 2)
        self.layer4 = self._layer(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _resnet(block, layers, num_classes, in_channels, small_input, width, kernels):
    return finish(ResNet(block, layers, num_classes, in_channels, small_input, width), kernels)


def resnet18(num_classes=1000, in_channels=3, small_input=False, *, width=64, kernels=True):
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, small_input, width, kernels)


def resnet34(num_classes=1000, in_channels=3, small_input=False, *, width=64, kernels=True):
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, small_input, width, kernels)


def resnet50(num_classes=1000, in_channels=3, small_input=False, *, width=64, kernels=True):
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, small_input, width, kernels)
